"""Returning situations (retour en instance): a sheet in suivi whose avis set a return date
comes back as a new passage of the same sheet.

suivi → retour (the facilitator brings it back; its referent updates the texts) → recevable
(the referent resends it, checked like a submission) → inscrite at the session nearest the
return date. History, earlier avis and préconisations stay on the sheet; each passage has
its own fiche retour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.domain.sheet_workflow import transition
from shared.encrypted import Vault
from shared.errors import InvalidTransitionError
from shared.models import Beneficiary, Decision, Meeting, Sheet, SheetEvent

# Sessions a returning situation can still be inscribed on (the agenda is open, or late
# additions are accepted).
INSCRIBABLE_STATES = ("planifiee", "odj_en_construction", "convoquee", "tenue")
RETURNING_STATES = ("suivi", "retour")


@dataclass(frozen=True)
class ReturnProposal:
    sheet: Sheet
    come_back_on: date


def latest_decision_ids():
    """The latest avis of each sheet (a returned situation's earlier avis keep their date)."""
    return select(func.max(Decision.id)).group_by(Decision.sheet_id)


def planned_return(session: Session, sheet: Sheet) -> date | None:
    """The return date set by the sheet's latest avis, if any."""
    return session.scalar(select(Decision.come_back_on).where(
        Decision.sheet_id == sheet.id).order_by(Decision.id.desc()).limit(1))


def nearest_meeting(meetings: list[Meeting], day: date) -> Meeting | None:
    """The session closest to ``day`` (the earlier one on a tie)."""
    return min(meetings, key=lambda m: (abs((m.day - day).days), m.starts_at), default=None)


def proposed_returns(session: Session, meeting: Meeting) -> list[ReturnProposal]:
    """Situations in suivi (or being updated) whose return date is nearest this session
    among the circonscription's sessions still open to inscription (a purged person's
    situation does not come back: its content is gone)."""
    if meeting.state not in INSCRIBABLE_STATES:
        return []
    rows = session.execute(
        select(Sheet, Decision.come_back_on).join(Decision, Decision.sheet_id == Sheet.id)
        .join(Beneficiary, Beneficiary.id == Sheet.beneficiary_id)
        .where(Sheet.circonscription_id == meeting.circonscription_id,
               Sheet.status.in_(RETURNING_STATES), Decision.come_back_on.is_not(None),
               Decision.id.in_(latest_decision_ids()), Beneficiary.purged_at.is_(None))
        .order_by(Decision.come_back_on, Sheet.id)).all()
    if not rows:
        return []
    open_meetings = list(session.scalars(select(Meeting).where(
        Meeting.circonscription_id == meeting.circonscription_id,
        Meeting.state.in_(INSCRIBABLE_STATES))))
    return [ReturnProposal(sheet, day) for sheet, day in rows
            if nearest_meeting(open_meetings, day) is meeting]


def returning_sheet_ids(session: Session, sheet_ids: list[int]) -> set[int]:
    """Which of these sheets already had a passage with an avis (a new passage is a return)."""
    if not sheet_ids:
        return set()
    return set(session.scalars(select(Decision.sheet_id).where(
        Decision.sheet_id.in_(sheet_ids)).distinct()))


def bring_back(session: Session, vault: Vault, sheet: Sheet, *,
               actor_id: int | None) -> SheetEvent:
    """Ask the referent to update a situation in suivi for its return (notified, audited).
    The planned return date goes to the sheet's history."""
    if sheet.status != "suivi":
        raise InvalidTransitionError(f"Seule une situation en suivi peut revenir en instance "
                                     f"(cette fiche est « {sheet.status_label} »).")
    if sheet.beneficiary.purged_at is not None:
        # Its referent would type the person's data again, under a new key that the
        # retention, which purges a person once, would never delete.
        raise InvalidTransitionError(f"La situation {sheet.reference} ne peut plus revenir en "
                                     "instance : les données de la personne ont été effacées au "
                                     "terme de leur durée de conservation.")
    day = planned_return(session, sheet)
    reason = (f"Retour en instance prévu le {day:%d/%m/%Y}." if day is not None
              else "Retour en instance demandé par l'animation.")
    return transition(session, vault, sheet, "bring_back", actor_id=actor_id, reason=reason)
