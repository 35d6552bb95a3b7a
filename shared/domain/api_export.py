"""What the API exports to the département's information systems: monthly statistics
(counts only, shared/domain/statistics.py) and the decisions of the instances,
pseudonymised: per situation its reference and pseudonym, the session, the
avis, the préconisations and the formal decision. No identity ever: this module reads no
identity field (the person is their pseudonym), and the texts it opens are the
préconisations, which every document of the instance already carries under the pseudonym
(screened against the person's identity when typed: docs/security.md)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from shared.domain.reference import reference_labels
from shared.domain.statistics import monthly_statistics
from shared.encrypted import Vault
from shared.errors import InvalidInputError, NotFoundError
from shared.models import Circonscription, Decision, DecisionAction, Meeting
from shared.models.meeting import FORMAL_DECISION, FORMAL_OUTCOMES

PURPOSE = "export API (décisions pseudonymisées)"
MAX_DAYS = 366


def export_decisions(session: Session, vault: Vault, since: date, until: date) -> list[dict]:
    """The avis given at sessions held from ``since`` to ``until`` (included, at most a
    year), oldest first. The préconisations are situational texts (their reading is not an
    audit row of its own, as for the documents); the call itself is audited by the API."""
    if until < since:
        raise InvalidInputError("La date de fin précède la date de début.")
    if (until - since).days > MAX_DAYS:
        raise InvalidInputError(f"Une période de {MAX_DAYS} jours au plus.")
    decisions = list(session.scalars(
        select(Decision).join(Meeting, Decision.meeting_id == Meeting.id)
        .where(Meeting.starts_at >= datetime.combine(since, time()),
               Meeting.starts_at < datetime.combine(until + timedelta(days=1), time()))
        .options(selectinload(Decision.actions).selectinload(DecisionAction.owner),
                 selectinload(Decision.formal))
        .order_by(Meeting.starts_at, Decision.id)))
    actions = [action for decision in decisions for action in decision.actions]
    labels = dict(zip((a.id for a in actions),
                      vault.open_many(actions, ["label"], purpose=PURPOSE), strict=True))
    avis_labels = reference_labels(session).get("avis", {})
    return [_decision(d, labels, avis_labels) for d in decisions]


def _decision(decision: Decision, labels: dict[int, dict], avis_labels: dict) -> dict[str, Any]:
    meeting, formal = decision.meeting, decision.formal
    return {
        "reference": decision.sheet.reference,
        "pseudonym": decision.sheet.beneficiary.pseudonym,
        "session": {"date": meeting.starts_at.date(),
                    "circonscription": meeting.circonscription.code},
        "avis": decision.avis,
        "avis_label": avis_labels.get(decision.avis, decision.avis),
        "come_back_on": decision.come_back_on,
        "formal_decision_by": decision.formal_decision_by or None,
        "formal_decision_by_label": FORMAL_DECISION.get(decision.formal_decision_by or ""),
        "preconisations": [
            {"label": _reveal(labels[action.id]["label"]),
             "structure": action.owner.name if action.owner else None,
             "due_on": action.due_on, "done_on": action.done_on}
            for action in decision.actions],
        "formal_decision": None if formal is None else {
            "outcome": formal.outcome, "outcome_label": FORMAL_OUTCOMES.get(formal.outcome),
            "decided_on": formal.decided_on, "author": formal.author},
    }


def _reveal(secret) -> str:
    return secret.reveal() if secret else ""


def statistics(session: Session, circonscription_code: str, year: int,
               month: int) -> dict[str, Any]:
    """The month's figures of one circonscription, as the statistics page shows them."""
    circonscription = session.scalar(select(Circonscription).where(
        Circonscription.code == circonscription_code.upper()))
    if circonscription is None:
        raise NotFoundError("Circonscription inconnue.")
    figures = dataclasses.asdict(monthly_statistics(session, circonscription.id, year, month))
    return {**figures, "circonscription": circonscription.code}
