"""The plugin host: hook specifications, loading and validating policy plugins."""
