"""The HTTP API under /api/v1, for the département's information systems."""
