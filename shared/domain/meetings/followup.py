"""After the session: actions done, situations to bring back, earlier passages."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.domain import returns
from shared.models import AgendaItem, Beneficiary, Decision, DecisionAction, Meeting, Sheet


def open_actions(session: Session, circonscription_ids: set[int]) -> list[DecisionAction]:
    """Préconisations not done yet, by due date (the annex of the next dossier too)."""
    return list(session.scalars(
        select(DecisionAction).join(Decision).join(Sheet, Decision.sheet_id == Sheet.id)
        .where(Sheet.circonscription_id.in_(circonscription_ids or {-1}),
               DecisionAction.done_on.is_(None))
        .order_by(DecisionAction.due_on.is_(None), DecisionAction.due_on)))


def situations_to_bring_back(session: Session, circonscription_ids: set[int],
                             horizon: date) -> list[Decision]:
    """The latest avis of situations in suivi (or being updated for their return) whose
    return date falls before ``horizon``: an earlier passage's date no longer counts, a
    purged person's situation does not come back."""
    return list(session.scalars(
        select(Decision).join(Sheet, Decision.sheet_id == Sheet.id)
        .join(Beneficiary, Beneficiary.id == Sheet.beneficiary_id)
        .where(Sheet.circonscription_id.in_(circonscription_ids or {-1}),
               Sheet.status.in_(returns.RETURNING_STATES), Decision.come_back_on.is_not(None),
               Decision.come_back_on <= horizon, Decision.id.in_(returns.latest_decision_ids()),
               Beneficiary.purged_at.is_(None))
        .order_by(Decision.come_back_on)))


def previous_passages(session: Session, sheet: Sheet) -> list[AgendaItem]:
    """Every time the situation was on an agenda (returned situations keep their history)."""
    return list(session.scalars(
        select(AgendaItem).join(Meeting).where(AgendaItem.sheet_id == sheet.id)
        .order_by(Meeting.starts_at)))
