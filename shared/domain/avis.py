"""Correcting an avis already recorded.

While the session is « tenue » and until the PV goes to signature, the facilitator corrects
an avis (« correction »). Once the PV is signed, only an erratum changes it: the session goes
back to « PV en signature » with a new PV version for the directors' visas. Either way the
previous version is kept (AvisRevision, encrypted) and audited, and the fiche retour is
built again when the session already produces it.
"""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy.orm import Session

from shared.domain import audit, documents, notifications
from shared.domain.meetings import (
    AVIS_REVIEW_INTRO,
    ActionInput,
    avis_texts,
    check_avis_inputs,
    review_sheet_texts,
)
from shared.domain.screening import audit_dismissals
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError
from shared.models import AvisRevision, Decision, DecisionAction
from shared.models.meeting import MEETING_STATES
from shared.text import clean_text

CORRECTION_STATES = {"tenue", "avis_saisis", "pv_redige"}
ERRATUM_STATES = {"pv_signe", "cloturee"}
REASON_LIMIT = 500


def revision_kind(state: str) -> str | None:
    """« correction », « erratum », or None when the avis cannot be changed now."""
    if state in CORRECTION_STATES:
        return "correction"
    if state in ERRATUM_STATES:
        return "erratum"
    return None


def correct(session: Session, vault: Vault, decision: Decision, *, avis: str,
            avis_codes: set[str], motivation: str, actions: list[ActionInput],
            come_back_on: date | None, formal_decision_by: str, reason: str,
            dismissals: dict[str, str] | None = None) -> AvisRevision:
    """Replace the avis with the version given, keeping the previous one; ``reason`` (why it
    changes, organisational) is required and kept with it. Texts are screened as when the
    avis was recorded (``dismissals``: finding key -> reason)."""
    meeting = decision.meeting
    kind = revision_kind(meeting.state)
    if kind is None:
        raise InvalidTransitionError(
            f"L'avis ne peut pas être corrigé : la séance est « {MEETING_STATES[meeting.state]} »"
            + (" ; attendez les visas, puis publiez un erratum si nécessaire."
               if meeting.state == "pv_en_signature" else "."))
    reason = clean_text(reason, label="Motif de la correction", limit=REASON_LIMIT,
                        multiline=True)
    if not reason:
        raise InvalidInputError("Indiquez le motif de la correction.")
    motivation, actions = check_avis_inputs(
        session, meeting, avis=avis, avis_codes=avis_codes, motivation=motivation,
        actions=actions, come_back_on=come_back_on, formal_decision_by=formal_decision_by)
    if decision.formal is not None and formal_decision_by != decision.formal_decision_by:
        raise InvalidInputError("La décision formelle est déjà prise : l'institution compétente ne "
                                "peut plus changer.")
    dismissals = dismissals or {}
    dismissed = review_sheet_texts(
        session, vault, decision.sheet,
        avis_texts(motivation, actions) | {"Motif de la correction": reason}, dismissals,
        "Avis non corrigé : " + AVIS_REVIEW_INTRO)
    revision = _keep_previous(session, vault, decision, kind, reason)
    _replace(session, vault, decision, avis=avis, motivation=motivation, actions=actions,
             come_back_on=come_back_on, formal_decision_by=formal_decision_by)
    audit.record(session, vault.keyring, vault.actor, f"avis_{kind}",
                 object_type="decisions", object_ids=[decision.id])
    audit_dismissals(session, vault, "decisions", decision.id, dismissed, dismissals)
    meeting.content_version += 1  # the PV and fiche retour carry the corrected avis
    if kind == "erratum":
        # A new PV version for the directors: the earlier visas stay on the version signed.
        meeting.state = "pv_en_signature"
        notifications.minutes_sent(session, meeting)
    if kind == "erratum" or documents.latest_document(session, meeting.id,
                                                      "minutes") is not None:
        # A PV already produced would be outdated: its new version is built at once.
        documents.request_document(session, meeting, "minutes", vault.actor.user_id)
    if meeting.state in documents.KIND_STATES["feedback"]:
        documents.request_document(session, meeting, "feedback", vault.actor.user_id,
                                   decision.sheet)
    session.flush()
    return revision


def _keep_previous(session: Session, vault: Vault, decision: Decision, kind: str,
                   reason: str) -> AvisRevision:
    motivation = vault.open(decision, "motivation")
    labels = vault.open_many(decision.actions, ["label"]) if decision.actions else []
    previous = {
        "motivation": motivation.reveal() if motivation is not None else "",
        "actions": [{"label": secret["label"].reveal() if secret["label"] else "",
                     "owner_structure_id": action.owner_structure_id,
                     "due_on": action.due_on.isoformat() if action.due_on else None,
                     "done_on": action.done_on.isoformat() if action.done_on else None}
                    for action, secret in zip(decision.actions, labels, strict=True)],
        "reason": reason,
    }
    revision = AvisRevision(decision=decision, kind=kind, revised_by=vault.actor.user_id,
                            avis=decision.avis, formal_decision_by=decision.formal_decision_by,
                            come_back_on=decision.come_back_on)
    session.add(revision)
    session.flush()
    vault.seal(revision, "previous", json.dumps(previous, ensure_ascii=False))
    return revision


def _replace(session: Session, vault: Vault, decision: Decision, *, avis: str,
             motivation: str, actions: list[ActionInput], come_back_on: date | None,
             formal_decision_by: str) -> None:
    """The avis takes the new values; a préconisation kept as it was stays done if it was."""
    labels = vault.open_many(decision.actions, ["label"]) if decision.actions else []
    done = {(secret["label"].reveal() if secret["label"] else "", action.owner_structure_id,
             action.due_on): action.done_on
            for action, secret in zip(decision.actions, labels, strict=True)}
    decision.avis, decision.come_back_on = avis, come_back_on
    decision.formal_decision_by = formal_decision_by
    vault.seal(decision, "motivation", motivation)
    for action in list(decision.actions):
        decision.actions.remove(action)
        session.delete(action)
    session.flush()
    for action in actions:
        row = DecisionAction(decision=decision, owner_structure_id=action.owner_structure_id,
                             due_on=action.due_on,
                             done_on=done.get((action.label, action.owner_structure_id,
                                               action.due_on)))
        session.add(row)
        session.flush()
        vault.seal(row, "label", action.label)


def previous_versions(vault: Vault, decision: Decision) -> list[tuple[AvisRevision, dict]]:
    """The earlier versions of an avis, oldest first, with their texts."""
    opened = vault.open_many(decision.revisions, ["previous"]) if decision.revisions else []
    return [(revision, json.loads(secret["previous"].reveal()) if secret["previous"] else {})
            for revision, secret in zip(decision.revisions, opened, strict=True)]
