enum MinkHTTPPlaceholder {}
