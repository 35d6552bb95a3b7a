"""What a session may do in each state: the lifecycle's transitions and the operations each
state allows (the session page offers what ``allowed_actions`` returns)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from shared.domain import audit
from shared.domain.notifications import ANSWER_STATES
from shared.encrypted import Vault
from shared.errors import InvalidTransitionError
from shared.models import Meeting
from shared.models.meeting import MEETING_STATES

TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
PRESENTER_LIMIT = 160
TEXT_LIMIT = 200
MOTIVATION_LIMIT = 2000
ACTION_LIMIT = 300


@dataclass(frozen=True)
class MeetingTransition:
    sources: frozenset[str]
    target: str
    label: str
    needs_reason: bool = False


TRANSITIONS = {
    "build_agenda": MeetingTransition(frozenset({"planifiee"}), "odj_en_construction",
                                      "ouvrir l'ordre du jour"),
    "convene": MeetingTransition(frozenset({"odj_en_construction"}), "convoquee",
                                 "convoquer (figer l'ordre du jour)"),
    "hold": MeetingTransition(frozenset({"convoquee"}), "tenue", "tenir la séance"),
    "finish_avis": MeetingTransition(frozenset({"tenue"}), "avis_saisis",
                                     "clore la saisie des avis"),
    "write_minutes": MeetingTransition(frozenset({"avis_saisis"}), "pv_redige",
                                       "marquer le PV rédigé"),
    "send_minutes": MeetingTransition(frozenset({"pv_redige"}), "pv_en_signature",
                                      "envoyer le PV en signature"),
    "sign_minutes": MeetingTransition(frozenset({"pv_en_signature"}), "pv_signe",
                                      "marquer le PV signé et diffusé"),
    # A director's correction request sends the minutes back to the CAT.
    "correct_minutes": MeetingTransition(frozenset({"pv_en_signature"}), "pv_redige",
                                         "demander une correction du PV"),
    "close": MeetingTransition(frozenset({"pv_signe"}), "cloturee", "clôturer la séance"),
    "cancel": MeetingTransition(frozenset({"planifiee", "odj_en_construction", "convoquee"}),
                                "annulee", "annuler la séance", needs_reason=True),
    "postpone": MeetingTransition(frozenset({"planifiee", "odj_en_construction", "convoquee"}),
                                  "reportee", "reporter la séance", needs_reason=True),
}

# Moves made by the directors' visas and correction requests, never from the session page.
DIRECTOR_ACTIONS = frozenset({"sign_minutes", "correct_minutes"})

# What else may be done in each state (beyond the transitions above).
AGENDA_OPEN = {"planifiee", "odj_en_construction"}
LATE_ADDITION = {"convoquee", "tenue"}
ATTENDANCE_STATES = {"convoquee", "tenue"}
AVIS_STATES = {"tenue"}
ADJOURN_STATES = {"odj_en_construction", "convoquee", "tenue"}


def allowed_actions(meeting: Meeting, today: date | None = None) -> set[str]:
    """Transitions and operations allowed now: what the session page offers."""
    today = today or date.today()
    actions = {name for name, rule in TRANSITIONS.items() if meeting.state in rule.sources}
    if meeting.state in AGENDA_OPEN:
        actions |= {"add_item", "inscribe", "reorder", "remove_item"}
    if meeting.state in LATE_ADDITION:
        actions |= {"add_item", "inscribe"}  # late, urgent additions: a new dossier version
    if meeting.state in ANSWER_STATES:
        actions.add("record_answers")
    if meeting.state in ATTENDANCE_STATES and today >= meeting.day:
        actions.add("record_attendance")
    if meeting.state in AVIS_STATES:
        actions.add("record_avis")
    if meeting.state in ADJOURN_STATES:
        actions.add("adjourn")
    if "hold" in actions and today < meeting.day:
        actions.discard("hold")
    return actions


def require_allowed(meeting: Meeting, action: str, today: date | None = None) -> None:
    if action not in allowed_actions(meeting, today):
        if action == "record_attendance" and meeting.state in ATTENDANCE_STATES:
            raise InvalidTransitionError(
                "Les présences se saisissent le jour de la séance ou après.")
        if action == "hold" and meeting.state == "convoquee":
            raise InvalidTransitionError("La séance ne peut être tenue avant sa date.")
        raise InvalidTransitionError(
            f"Action impossible : la séance est « {MEETING_STATES[meeting.state]} »."
        )


def audit_meeting(session: Session, vault: Vault, action: str, meeting: Meeting, **kwargs) -> None:
    audit.record(session, vault.keyring, vault.actor, f"meeting_{action}",
                 object_type="meetings", object_ids=[meeting.id], **kwargs)

