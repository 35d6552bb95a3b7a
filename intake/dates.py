"""Dates and times as users read them: French order, Paris time (stored times are UTC)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = ZoneInfo("UTC")


def french_date(value: str | None) -> str:
    """ISO date text (as stored) -> JJ/MM/AAAA; anything else is shown unchanged."""
    if value and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return f"{value[8:10]}/{value[5:7]}/{value[0:4]}"
    return value or ""


def paris_time(moment: datetime | str | None, fmt: str = "%d/%m/%Y à %H:%M") -> str:
    """A stored (naive UTC) timestamp in Paris time; said to be UTC where the system has no
    time zone data. ISO text (the key ring's and ``icli keys status``'s times, with their
    offset or ``Z``) is read first; text that is not ISO is shown unchanged."""
    if not moment:
        return ""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    aware = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return aware.astimezone(ZoneInfo("Europe/Paris")).strftime(fmt)
    except ZoneInfoNotFoundError:
        return aware.strftime(fmt) + " (UTC)"
