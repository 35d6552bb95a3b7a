"""L'ordre du jour, and the parts of it the dossier de séance repeats."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy.orm import Session

from generator.contexts.common import (
    header,
    load_agenda,
    member_entry,
    numbered,
    passages_by_person,
    sheet_items,
    sorted_members,
)
from generator.contexts.formatting import clean, french_time, short_date, slot_time
from shared.domain.meetings import TIME_RE, open_actions
from shared.domain.reference import reference_labels
from shared.encrypted import Vault
from shared.models import AgendaItem, Meeting, Sheet
from shared.models.meeting import ICAG_KINDS


def _entry(item: AgendaItem, number: str, labels: dict[str, dict[str, str]],
           passages: list[dict]) -> dict:
    """One situation of the agenda: reference and pseudonym, never an identity."""
    sheet = item.sheet
    pseudonym = sheet.beneficiary.pseudonym
    passage = f"Retour (passage du {passages[-1]['date']})" if passages else "Nouvelle situation"
    return {
        "number": number,
        "time_slot": slot_time(item.time_slot),
        "reference": clean(sheet.reference),
        "pseudonym": clean(pseudonym),
        "label": clean(f"{sheet.reference} – {pseudonym}"),
        "structure": clean(sheet.structure.name),
        "structure_type": clean(sheet.structure.type_label),
        "motif": clean(labels["motif"].get(sheet.motif or "", "")),
        "passage": passage,
        "icag_kind": ICAG_KINDS.get(item.icag_kind, ""),
        "urgent": "Urgente" if sheet.urgent else "",
        "late": "Ajout tardif" if item.late else "",
    }


def open_recommendations(session: Session, vault: Vault, meeting: Meeting) -> list[dict]:
    """Préconisations of earlier sessions of the circonscription not done yet (by due date)."""
    actions = [a for a in open_actions(session, {meeting.circonscription_id})
               if a.decision.meeting.starts_at < meeting.starts_at]
    opened = vault.open_many(actions, ["label"]) if actions else []
    rows = []
    for action, secret in zip(actions, opened, strict=True):
        if action.due_on is None:
            state = "À réaliser (sans échéance)"
        elif action.due_on < meeting.day:
            state = "Échéance dépassée"
        else:
            state = "En cours"
        label = secret["label"]
        rows.append({
            "reference": clean(action.decision.sheet.reference),
            "session_date": short_date(action.decision.meeting.starts_at.date()),
            "preconisation": clean(label.reveal() if label is not None else ""),
            "porteur": clean(action.owner.name if action.owner else ""),
            "echeance": short_date(action.due_on),
            "state": state,
        })
    return rows


PART_ORDER = ("partenariat", "situation", "icag")
FOLLOWUPS_PRESENTER = "Chargé·e d'animation territoriale"


def planned_times(meeting: Meeting) -> tuple[dict[int, str], str]:
    """A time for every item of the agenda: its slot when it has one, else the end of the
    item before it (from the session's start, in the agenda's order); and the time the
    follow-up part starts, after the last item. Adjourned items take no time."""
    cursor = datetime.combine(meeting.day, meeting.starts_at.time())
    times: dict[int, str] = {}
    for part in PART_ORDER:
        for item in meeting.items:
            if item.part != part or item.outcome == "ajourne":
                continue
            match = TIME_RE.match(item.time_slot or "")
            if match:
                cursor = datetime.combine(meeting.day, time(int(item.time_slot[:2]),
                                                            int(item.time_slot[3:])))
            times[item.id] = french_time(cursor)
            cursor += timedelta(minutes=item.duration_minutes or 0)
    return times, french_time(cursor)


def agenda_parts(session: Session, vault: Vault, meeting: Meeting, version: int, today: date,
                 labels: dict[str, dict[str, str]]) -> tuple[dict, dict[int, list[dict]]]:
    """The agenda's context, and the earlier passages of its people (the dossier prints
    them on each fiche)."""
    load_agenda(session, meeting)
    numbers = numbered(meeting)
    on_agenda = sheet_items(meeting, "situation") + sheet_items(meeting, "icag")
    passages = passages_by_person(session, meeting, [i.sheet for i in on_agenda], labels)

    times, followups_time = planned_times(meeting)

    def entries(part: str) -> list[dict]:
        return [_entry(i, numbers[i.id], labels, passages.get(i.sheet.beneficiary_id, []))
                | {"time_slot": times[i.id]} for i in sheet_items(meeting, part)]

    followups = [{k: row[k] for k in ("reference", "session_date", "porteur", "echeance",
                                      "state")}
                 for row in open_recommendations(session, vault, meeting)]
    context = header(session, meeting, version, today) | {
        "video_link": clean(meeting.video_link),
        "partnership": [{"title": clean(i.title), "duration": f"{i.duration_minutes} min",
                         "time_slot": times[i.id], "presenter": clean(i.presenter)}
                        for i in meeting.items if i.part == "partenariat"],
        "situations": entries("situation"),
        "icag": entries("icag"),
        "followups": followups,
        "followups_time": followups_time,
        "followups_presenter": FOLLOWUPS_PRESENTER,
        "members": [member_entry(row) for row in sorted_members(meeting)],
    }
    return context, passages


def agenda_context(session: Session, vault: Vault, meeting: Meeting, version: int,
                   today: date, sheet: Sheet | None = None) -> dict:
    """L'ordre du jour: partnership, situations by reference and pseudonym with their slot,
    ICAG items, open préconisations by reference only, the invited members."""
    context, _passages = agenda_parts(session, vault, meeting, version, today,
                                      reference_labels(session))
    return context

