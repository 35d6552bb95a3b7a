"""Database rows -> plain, formatted, pseudonymised dicts, one builder per document kind.

Each builder copies an explicit allowlist of fields: a template never sees a model, and
nothing of the identity chain can reach it (this process does not even hold that chain).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy.orm import Session

from shared.domain.reference import reference_labels
from shared.models import Meeting
from shared.models.meeting import AGENDA_PARTS

_MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre"]
_DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
# XML 1.0 forbids most control characters: they would make the .docx unreadable.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

AGENDA_KEYS = {"circonscription", "meeting_date", "meeting_time", "place", "parts",
               "version", "generated_on"}


def clean(text: str | None) -> str:
    """Text safe for a .docx: no control characters."""
    return _CONTROL.sub("", text or "")


def french_date(day: date) -> str:
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def french_time(moment: datetime) -> str:
    return f"{moment.hour} h {moment.minute:02d}"


def agenda_context(session: Session, meeting: Meeting, version: int, today: date) -> dict:
    """The ordre du jour: parts with their items, situations by reference and pseudonym."""
    motifs = reference_labels(session)["motif"]
    parts = []
    for number, (part, title) in enumerate(AGENDA_PARTS.items(), start=1):
        items = []
        for item in (i for i in meeting.items if i.part == part):
            if item.sheet is not None:
                label = f"{item.sheet.reference} – {item.sheet.beneficiary.pseudonym}"
                presenter = item.sheet.structure.name
                motif = motifs.get(item.sheet.motif or "", "")
            else:
                label, presenter, motif = item.title, "", ""
            items.append({"time_slot": clean(item.time_slot), "label": clean(label),
                          "presenter": clean(presenter), "motif": clean(motif)})
        if items:
            parts.append({"number": number, "title": title, "entries": items})
    return {
        "circonscription": clean(meeting.circonscription.name),
        "meeting_date": french_date(meeting.starts_at.date()),
        "meeting_time": french_time(meeting.starts_at),
        "place": clean(meeting.place),
        "parts": parts,
        "version": str(version),
        "generated_on": french_date(today),
    }


BUILDERS = {"agenda": (agenda_context, AGENDA_KEYS)}
