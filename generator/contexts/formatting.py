"""Formatting helpers of the context builders: every value a template receives is a string
already cleaned of control characters and formatted the French way."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.text import FRENCH_MONTHS

_DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
# XML 1.0 forbids most control characters (they would make the .docx unreadable); C1 controls
# and lone surrogates (not encodable) go too. Tab and newline stay: docxtpl lays them out.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_PARIS = "Europe/Paris"


def clean(text: Any) -> str:
    """Text safe for a .docx: no control characters (tab and newline kept)."""
    return _CONTROL.sub("", "" if text is None else str(text))


def french_date(day: date) -> str:
    """« mardi 15 décembre 2026 », « lundi 1er février 2027 »."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{_DAYS[day.weekday()]} {number} {FRENCH_MONTHS[day.month - 1]} {day.year}"


def short_date(day: date | None) -> str:
    return f"{day:%d/%m/%Y}" if day else ""


# French typography: a non-breaking space inside « 17 h 30 », so a time never splits.
NBSP = "\u00a0"


_BEFORE_PUNCTUATION = re.compile(r" ([:;?!»])")
_AFTER_QUOTE = re.compile(r"« ")


def french_typography(text: str) -> str:
    """The product's own wording (a form's labels) as a document prints it: a non-breaking
    space before « : ; ? ! » and inside « … ». Texts people typed are printed as typed."""
    return _AFTER_QUOTE.sub("«" + NBSP, _BEFORE_PUNCTUATION.sub(NBSP + r"\1", text))


def french_time(moment: datetime) -> str:
    return hours(moment.hour, f"{moment.minute:02d}")


def hours(hour: int, minutes: str) -> str:
    """« 17 h 30 », held together by non-breaking spaces."""
    return f"{hour}{NBSP}h{NBSP}{minutes}"


def slot_time(slot: str | None) -> str:
    """« 14:30 » -> « 14 h 30 »; anything else cleaned as it is."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", slot or "")
    return hours(int(match[1]), match[2]) if match else clean(slot)


def iso_to_short(value: Any) -> str:
    try:
        return short_date(date.fromisoformat(str(value)))
    except ValueError:
        return clean(value)


def local_time(moment: datetime) -> tuple[datetime, str]:
    """A naive UTC timestamp in Paris time, or in UTC (said so) without time zone data."""
    aware = moment.replace(tzinfo=UTC)
    try:
        return aware.astimezone(ZoneInfo(_PARIS)), ""
    except ZoneInfoNotFoundError:
        return aware, " (UTC)"


def plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def numbers_label(numbers: list[str]) -> str:
    """["1"] -> "n° 1"; ["1", "3", "4"] -> "n° 1, 3 et 4"."""
    if len(numbers) == 1:
        return f"n° {numbers[0]}"
    return "n° " + ", ".join(numbers[:-1]) + " et " + numbers[-1]

