"""Free text typed into forms: one rule for every field that is not a situation sheet's.

Line breaks pasted from word processors (vertical tab, form feed) become newlines; other
control characters, which PostgreSQL and Word files cannot hold, are refused in French.
"""

from __future__ import annotations

import re

from shared.errors import InvalidInput

CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def has_control(value: str) -> bool:
    return bool(CONTROL.search(value))


def clean_text(value: str | None, *, label: str, limit: int, required: bool = False) -> str:
    """The text stripped, or InvalidInput naming the field (never quoting the value)."""
    value = (value or "").replace("\r\n", "\n").replace("\x0b", "\n").replace("\x0c", "\n")
    if has_control(value):
        raise InvalidInput(f"{label} : caractères de contrôle non autorisés.")
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{label} : champ obligatoire.")
    if len(value) > limit:
        raise InvalidInput(f"{label} : {limit} caractères au plus.")
    return value
