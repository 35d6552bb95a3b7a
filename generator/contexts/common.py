"""Pieces several documents share: the session header, the agenda's situations and their
numbers, the invited members, earlier passages and the latest decisions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from generator.contexts.formatting import clean, french_date, french_time, short_date
from shared.domain import documents
from shared.domain.meetings import facilitators_of
from shared.models import (
    AgendaItem,
    Decision,
    DecisionAction,
    Meeting,
    MeetingMember,
    Sheet,
)
from shared.models.meeting import ANSWERS, MEMBER_KINDS


def header(session: Session, meeting: Meeting, version: int, today: date) -> dict:
    return {
        "circonscription": clean(meeting.circonscription.name),
        "meeting_date": french_date(meeting.starts_at.date()),
        "meeting_time": french_time(meeting.starts_at),
        "place": clean(meeting.place),
        "facilitators": clean(", ".join(user.full_name for user in facilitators_of(
            session, meeting.circonscription_id))),
        "version": str(version),
        "generated_on": french_date(today),
    }


def archive_version(meeting: Meeting, kind: str, version: int) -> str:
    """The version as printed; a copy produced after the avis were closed says it is one."""
    if documents.is_archive_copy(meeting, kind):
        return f"{version} (copie d'archive établie après la séance)"
    return str(version)


def load_agenda(session: Session, meeting: Meeting) -> None:
    """Load the agenda's items with their sheets, structures and people in a few queries.
    The meeting holds them from then on (the session's identity map alone would let them go)."""
    session.scalars(
        select(Meeting).where(Meeting.id == meeting.id)
        .options(selectinload(Meeting.items).selectinload(AgendaItem.sheet)
                 .options(selectinload(Sheet.structure), selectinload(Sheet.beneficiary)))
        .execution_options(populate_existing=True)).one()


def sheet_items(meeting: Meeting, part: str, *, with_adjourned: bool = False
                ) -> list[AgendaItem]:
    return [i for i in meeting.items if i.part == part and i.sheet is not None
            and (with_adjourned or i.outcome != "ajourne")]


def numbered(meeting: Meeting) -> dict[int, str]:
    """Situation numbers shared by the agenda, the dossier and the attendance sheet:
    studies of situations first, then ICAG items, in agenda order; adjourned ones left out."""
    items = sheet_items(meeting, "situation") + sheet_items(meeting, "icag")
    return {item.id: str(number) for number, item in enumerate(items, start=1)}


def sorted_members(meeting: Meeting) -> list[MeetingMember]:
    return sorted(meeting.members, key=lambda row: (
        row.member.kind != "permanent",
        (row.member.structure.name if row.member.structure else "").casefold(),
        row.member.name.casefold()))


def member_entry(row: MeetingMember) -> dict:
    member = row.member
    answer = ANSWERS.get(row.answer, "")
    if row.answer == "remplace" and row.replacement:
        answer = f"{answer} {row.replacement}"
    return {"name": clean(member.name),
            "structure": clean(member.structure.name if member.structure else ""),
            "function": clean(member.function),
            "status": MEMBER_KINDS.get(member.kind, clean(member.kind)),
            "answer": clean(answer)}


def passages_by_person(session: Session, meeting: Meeting, sheets: Iterable[Sheet],
                       labels: dict[str, dict[str, str]]) -> dict[int, list[dict]]:
    """Earlier passages of each sheet's person (any of their sheets), by beneficiary id:
    date, reference, motif and avis (or « Ajournée »). Cancelled sessions do not count."""
    beneficiary_ids = {sheet.beneficiary_id for sheet in sheets}
    if not beneficiary_ids:
        return {}
    rows = session.execute(
        select(AgendaItem, Meeting.starts_at, Sheet)
        .join(Meeting, AgendaItem.meeting_id == Meeting.id)
        .join(Sheet, AgendaItem.sheet_id == Sheet.id)
        .where(Sheet.beneficiary_id.in_(beneficiary_ids),
               Meeting.starts_at < meeting.starts_at,
               Meeting.state.not_in(("annulee", "reportee")),
               AgendaItem.outcome.in_(("examine", "ajourne")))
        .order_by(Meeting.starts_at, AgendaItem.id)).all()
    decisions = decisions_of(session,
                             {(item.meeting_id, item.sheet_id) for item, _at, _s in rows})
    passages: dict[int, list[dict]] = {}
    for item, starts_at, sheet in rows:
        decision = decisions.get((item.meeting_id, item.sheet_id))
        if item.outcome == "ajourne":
            avis = "Ajournée"
        else:
            avis = labels["avis"].get(decision.avis, decision.avis) if decision else ""
        passages.setdefault(sheet.beneficiary_id, []).append({
            "date": short_date(starts_at.date()),
            "reference": clean(sheet.reference),
            "motif": clean(labels["motif"].get(sheet.motif or "", "")),
            "avis": clean(avis),
        })
    return passages


def decisions_of(session: Session, pairs: set[tuple[int, int | None]]
                 ) -> dict[tuple[int, int], Decision]:
    """The latest decision per (meeting id, sheet id)."""
    meeting_ids = {m for m, _s in pairs}
    if not meeting_ids:
        return {}
    found: dict[tuple[int, int], Decision] = {}
    for decision in session.scalars(
            select(Decision).where(Decision.meeting_id.in_(meeting_ids))
            .options(selectinload(Decision.actions).selectinload(DecisionAction.owner))
            .order_by(Decision.id)):
        if (decision.meeting_id, decision.sheet_id) in pairs:
            found[(decision.meeting_id, decision.sheet_id)] = decision
    return found

