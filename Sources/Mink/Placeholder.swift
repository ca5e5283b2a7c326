public enum MinkPlaceholder {}
