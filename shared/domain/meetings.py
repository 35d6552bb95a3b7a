"""Sessions (séances) and their agenda (the full facilitator job grows in issue 4)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.domain.sheet_workflow import transition
from shared.encrypted import Vault
from shared.errors import InvalidInput
from shared.models import AgendaItem, Circonscription, Meeting, Sheet
from shared.models.meeting import AGENDA_PARTS


def create_meeting(session: Session, circonscription: Circonscription, starts_at: datetime,
                   place: str) -> Meeting:
    if len(place) > 200:
        raise InvalidInput("Le lieu fait 200 caractères au plus.")
    meeting = Meeting(circonscription_id=circonscription.id, starts_at=starts_at,
                      place=place.strip(), state="planifiee")
    session.add(meeting)
    session.flush()
    return meeting


def _next_position(session: Session, meeting: Meeting) -> int:
    last = session.scalar(select(func.max(AgendaItem.position))
                          .where(AgendaItem.meeting_id == meeting.id))
    return (last or 0) + 1


def _agenda_changed(meeting: Meeting) -> None:
    meeting.content_version += 1
    if meeting.state == "planifiee":
        meeting.state = "odj_en_construction"


def add_partnership_item(session: Session, meeting: Meeting, title: str,
                         duration_minutes: int = 20) -> AgendaItem:
    """A non-case item (partenariat, interconnaissance): a title that names no beneficiary."""
    title = title.strip()
    if not title or len(title) > 200:
        raise InvalidInput("L'intitulé est obligatoire (200 caractères au plus).")
    item = AgendaItem(meeting=meeting, part="partenariat", title=title,
                      duration_minutes=duration_minutes,
                      position=_next_position(session, meeting))
    session.add(item)
    _agenda_changed(meeting)
    session.flush()
    return item


def inscribe_sheet(session: Session, vault: Vault, meeting: Meeting, sheet: Sheet,
                   time_slot: str, *, actor_id: int | None, part: str = "situation",
                   duration_minutes: int = 20) -> AgendaItem:
    """Put a screened sheet on the agenda at a time slot (each referent attends their own)."""
    if part not in AGENDA_PARTS or part == "partenariat":
        raise InvalidInput("Partie de l'ordre du jour inconnue.")
    if sheet.circonscription_id != meeting.circonscription_id:
        raise InvalidInput("La fiche relève d'une autre circonscription.")
    transition(session, vault, sheet, "inscribe", actor_id=actor_id)
    item = AgendaItem(meeting=meeting, part=part, sheet=sheet, time_slot=time_slot,
                      duration_minutes=duration_minutes,
                      position=_next_position(session, meeting))
    session.add(item)
    _agenda_changed(meeting)
    session.flush()
    return item
