"""Ids from URLs and forms: beyond what a database integer holds they are "not found" (404,
or the form's own message), never an overflow in the database driver (500)."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_ID = 2**63 - 1  # PostgreSQL BIGINT and SQLite INTEGER


class RecordIdConverter(IntegerConverter):
    """Replaces Flask's ``<int:…>``: the same digits-only match, bounded."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def record_id(value: str) -> int:
    """``request.form.get(name, type=record_id)``: ValueError (hence the default) unless
    ``value`` is a positive whole number a database id can be."""
    if not (value.isascii() and value.isdigit()):
        raise ValueError("not an id")
    number = int(value)
    if not 0 < number <= MAX_ID:
        raise ValueError("not an id")
    return number
