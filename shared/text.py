"""Free text typed into forms: one spelling for what reads the same, one rule for fields.

Every typed value goes through ``canonical`` first (sheets, identities, other forms), so the
duplicate indexes and the identifying-text checks see the text its readers see. Line breaks
pasted from word processors (vertical tab, form feed) become newlines; other control
characters, which PostgreSQL and Word files cannot hold, are refused in French.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from shared.errors import InvalidInputError

CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_FULL_WIDTH = range(0xFF01, 0xFF5F)  # full-width ASCII: "Ａ" is "A" shifted by 0xFEE0
_ZWJ = "\u200d"
_EMOJI_PARTS = {"So", "Sk", "Mn"}  # a joiner after these joins emoji (👩🏾‍⚕️), not letters


def _plain(char: str) -> str:
    if ord(char) in _FULL_WIDTH:
        return chr(ord(char) - 0xFEE0)
    if char.isdecimal() and not char.isascii():  # digits of every script: "٣", "３"
        return str(unicodedata.decimal(char))
    return char


def canonical(value: str) -> str:
    """NFC (a letter typed with a separate accent becomes one letter), invisible format
    characters dropped (soft hyphen, zero-width spaces and joiners, bidirectional controls:
    none is visible, each can split a name or a number away from the checks; a joiner inside
    an emoji stays), full-width letters and every script's digits in ASCII, pasted line
    breaks as newlines."""
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n"))
    value = value.replace("\x0b", "\n").replace("\x0c", "\n")
    kept: list[str] = []
    for char in value:
        if unicodedata.category(char) != "Cf" or (
                char == _ZWJ and kept and unicodedata.category(kept[-1]) in _EMOJI_PARTS):
            kept.append(_plain(char))
    return "".join(kept)


FRENCH_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                 "septembre", "octobre", "novembre", "décembre")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FRENCH_DATE = re.compile(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}")


def iso_date(value: str | None) -> date:
    """AAAA-MM-JJ only, the stored form; ValueError otherwise. Not date.fromisoformat
    alone: it also takes "20000229" and week dates, which stored would miss duplicates."""
    if value is None or not _ISO_DATE.fullmatch(value):
        raise ValueError("not an AAAA-MM-JJ date")
    return date.fromisoformat(value)


def parse_date(value: str | None) -> date:
    """A typed date: AAAA-MM-JJ (what a date field sends) or JJ/MM/AAAA (typed where the
    browser has no date picker); ValueError otherwise."""
    value = (value or "").strip()
    if _FRENCH_DATE.fullmatch(value):
        return datetime.strptime(value, "%d/%m/%Y").date()
    return iso_date(value)


def iso_date_or_typed(value: str) -> str:
    """A typed date as AAAA-MM-JJ, or as typed when it is not a date (reported later)."""
    try:
        return parse_date(value).isoformat()
    except ValueError:
        return value


def has_control(value: str) -> bool:
    return bool(CONTROL.search(value))


def clean_text(value: str | None, *, label: str, limit: int, required: bool = False,
               multiline: bool = False) -> str:
    """The text stripped, or InvalidInputError naming the field (never quoting the value). A
    one-line field (a name, a title, a place) gets each run of spaces and line breaks of any
    kind as one space: it is printed on one line of a table or a document."""
    value = canonical(value or "")
    if has_control(value):
        raise InvalidInputError(f"{label} : caractères de contrôle non autorisés.")
    value = value.strip() if multiline else " ".join(value.split())
    if required and not value:
        raise InvalidInputError(f"{label} : champ obligatoire.")
    if len(value) > limit:
        raise InvalidInputError(f"{label} : {limit} caractères au plus.")
    return value
