"""The settings: schema, loading, validation and the limits check-config applies."""
