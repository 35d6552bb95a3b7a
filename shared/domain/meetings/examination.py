"""Examination in session: the avis, its motivation and actions, screened for identity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from shared.domain import audit
from shared.domain.meetings.agenda import agenda_item
from shared.domain.meetings.guard import review_sheet_texts
from shared.domain.meetings.states import (
    ACTION_LIMIT,
    MOTIVATION_LIMIT,
    audit_meeting,
    require_allowed,
)
from shared.domain.screening import audit_dismissals
from shared.domain.sheet_workflow import transition as sheet_transition
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError
from shared.models import Decision, DecisionAction, Meeting, Structure
from shared.models.meeting import FORMAL_DECISION
from shared.text import clean_text


@dataclass(frozen=True)
class ActionInput:
    label: str
    owner_structure_id: int | None
    due_on: date | None


def check_avis_inputs(session: Session, meeting: Meeting, *, avis: str, avis_codes: set[str],
                      motivation: str, actions: list[ActionInput], come_back_on: date | None,
                      formal_decision_by: str) -> tuple[str, list[ActionInput]]:
    """The avis's cleaned motivation and actions, or a French error listing every problem
    (an avis recorded, or corrected)."""
    motivation = clean_text(motivation, label="Motivation", limit=MOTIVATION_LIMIT,
                            multiline=True)
    actions = [ActionInput(clean_text(a.label, label="Action", limit=ACTION_LIMIT),
                           a.owner_structure_id, a.due_on) for a in actions]
    problems = []
    if avis not in avis_codes:
        problems.append("choisissez un avis")
    if formal_decision_by not in FORMAL_DECISION:
        problems.append("décision formelle : choix invalide")
    if come_back_on is not None and come_back_on <= meeting.day:
        problems.append("la date de retour en instance doit suivre la séance")
    for action in actions:
        if not action.label:
            problems.append("chaque action a un intitulé")
        if action.due_on is not None and action.due_on < meeting.day:
            problems.append("l'échéance d'une action ne peut précéder la séance")
        if action.owner_structure_id and session.get(Structure,
                                                     action.owner_structure_id) is None:
            problems.append("structure porteuse inconnue")
    if problems:
        raise InvalidInputError(
            "Avis non enregistré : " + " ; ".join(dict.fromkeys(problems)) + ".")
    return motivation, actions


def avis_texts(motivation: str, actions: list[ActionInput]) -> dict[str, str]:
    """An avis's free texts, labelled as the review page shows them."""
    return {"Motivation": motivation} | {f"Action {number}": action.label
                                         for number, action in enumerate(actions, 1)}


AVIS_REVIEW_INTRO = ("ces textes iront au procès-verbal et à la fiche retour, qui désignent "
                     "la personne par sa seule référence. Reformulez ; un élément qui ne "
                     "désigne ni la personne ni un tiers peut être écarté avec un motif :")


def record_avis(session: Session, vault: Vault, meeting: Meeting, item_id: int, *, avis: str,
                avis_codes: set[str], motivation: str, actions: list[ActionInput],
                come_back_on: date | None, formal_decision_by: str,
                dismissals: dict[str, str] | None = None) -> Decision:
    """The instance's avis on one situation, with its préconisations.

    Texts that look identifying are refused: the person's own identity always, another
    finding until the facilitator dismisses it with a reason (``dismissals``: finding key
    -> reason, audited as counts)."""
    require_allowed(meeting, "record_avis")
    item = agenda_item(meeting, item_id)
    if item.sheet is None or item.outcome:
        raise InvalidInputError("Cette situation a déjà un avis ou a été ajournée.")
    motivation, actions = check_avis_inputs(
        session, meeting, avis=avis, avis_codes=avis_codes, motivation=motivation,
        actions=actions, come_back_on=come_back_on, formal_decision_by=formal_decision_by)
    sheet = item.sheet
    dismissals = dismissals or {}
    dismissed = review_sheet_texts(session, vault, sheet, avis_texts(motivation, actions),
                                   dismissals, "Avis non enregistré : " + AVIS_REVIEW_INTRO)
    sheet_transition(session, vault, sheet, "examine", actor_id=vault.actor.user_id)
    decision = Decision(meeting_id=meeting.id, sheet=sheet, avis=avis,
                        formal_decision_by=formal_decision_by, come_back_on=come_back_on)
    session.add(decision)
    session.flush()
    vault.seal(decision, "motivation", motivation)
    for action in actions:
        row = DecisionAction(decision=decision, owner_structure_id=action.owner_structure_id,
                             due_on=action.due_on)
        session.add(row)
        session.flush()
        vault.seal(row, "label", action.label)
    sheet_transition(session, vault, sheet, "record_avis", actor_id=vault.actor.user_id)
    audit_dismissals(session, vault, "decisions", decision.id, dismissed, dismissals)
    item.outcome = "examine"
    audit_meeting(session, vault, "avis_recorded", meeting, fields=[str(sheet.id)])
    session.flush()
    return decision


def mark_action_done(session: Session, vault: Vault, action: DecisionAction,
                     today: date | None = None) -> None:
    if action.done_on is not None:
        raise InvalidTransitionError("Cette préconisation est déjà réalisée.")
    action.done_on = today or date.today()
    audit.record(session, vault.keyring, vault.actor, "action_done",
                 object_type="decision_actions", object_ids=[action.id])
    session.flush()


