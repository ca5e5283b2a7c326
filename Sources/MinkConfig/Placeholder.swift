/// Placeholder.
enum MinkConfigPlaceholder {}
