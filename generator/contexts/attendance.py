"""La feuille d'émargement: invited members and presenting structures, never a person."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from generator.contexts.common import (
    archive_version,
    header,
    load_agenda,
    member_entry,
    numbered,
    sheet_items,
    sorted_members,
)
from generator.contexts.formatting import clean, numbers_label, plural, slot_time
from shared.encrypted import Vault
from shared.models import AgendaItem, Meeting, MeetingMember, Sheet

# Before the session is held, the presence columns stay blank: they are ticked at the door.
NOT_HELD = {"planifiee", "odj_en_construction", "convoquee"}


def _attendance_marks(row: MeetingMember, held: bool) -> dict:
    """« X » in the present, excused or absent column once the session is held (a replaced
    member counts as excused: the substitute signs among the other participants)."""
    recorded = row.attendance if held else ""
    return {"present": "X" if recorded == "present" else "",
            "excused": ("X" if recorded == "excuse" else
                        "Remplacé·e" if recorded == "remplace" else ""),
            "absent": "X" if recorded == "absent" else ""}


def attendance_context(session: Session, vault: Vault, meeting: Meeting, version: int,
                       today: date, sheet: Sheet | None = None) -> dict:
    """Invited members, then one line per presenting structure with its situation numbers
    and time slots: never a beneficiary's name, reference or pseudonym."""
    load_agenda(session, meeting)
    numbers = numbered(meeting)
    by_structure: dict[int, list[AgendaItem]] = {}
    for item in sheet_items(meeting, "situation") + sheet_items(meeting, "icag"):
        by_structure.setdefault(item.sheet.structure_id, []).append(item)
    presenters = []
    for items in by_structure.values():
        nums = [numbers[i.id] for i in items]
        word = plural(len(nums), "la situation", "les situations")
        slots = list(dict.fromkeys(slot_time(i.time_slot) for i in items))
        presenters.append({"structure": clean(items[0].sheet.structure.name),
                           "label": f"Référent·e présentant {word} {numbers_label(nums)}",
                           "time_slots": ", ".join(slots)})
    held = meeting.state not in NOT_HELD
    return header(session, meeting, version, today) | {
        "version": archive_version(meeting, "attendance", version),
        "members": [member_entry(row) | _attendance_marks(row, held)
                    for row in sorted_members(meeting)],
        "presenters": presenters,
    }
