"""The generator worker: fills the Word templates into pseudonymised documents."""
