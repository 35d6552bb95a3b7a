"""Moving a session along its lifecycle, and what each move does to its sheets, members and
documents."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.domain import audit, documents, notifications
from shared.domain.meetings.guard import GUARD_PURPOSE
from shared.domain.meetings.members import invite_members, set_secretary
from shared.domain.meetings.states import TRANSITIONS, audit_meeting, require_allowed
from shared.domain.screening import SessionFinding, audit_dismissals, review_session_texts
from shared.domain.sheet_workflow import transition as sheet_transition
from shared.domain.sheets import person_identities
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError
from shared.models import (
    Decision,
    GeneratedDocument,
    Meeting,
    MinutesCorrection,
    MinutesVisa,
    User,
)
from shared.models.document import INSTITUTIONS
from shared.text import clean_text


def transition(session: Session, vault: Vault, meeting: Meeting, action: str, *,
               reason: str = "", today: date | None = None,
               dismissals: dict[str, str] | None = None, secretary: str | None = None) -> None:
    """Move the session, or raise a French error and change nothing (``dismissals``: for
    a cancellation or postponement reason, see ``shared.domain.screening``; ``secretary``:
    when holding it, one of ``secretary_choices``, which the minutes name; None when the
    caller does not choose one, as a session recorded afterwards)."""
    rule = TRANSITIONS[action]
    require_allowed(meeting, action, today)
    reason = clean_text(reason, label="Motif", limit=500, multiline=True)
    if rule.needs_reason and not reason:
        raise InvalidInputError(f"Indiquez le motif pour {rule.label}.")
    if action == "convene" and not meeting.items:
        raise InvalidInputError("L'ordre du jour est vide : inscrivez au moins un point.")
    if action == "hold" and not any(m.attendance in ("present", "remplace")
                                    for m in meeting.members):
        raise InvalidInputError("Saisissez d'abord les présences : aucun membre n'est présent.")
    if action == "send_minutes":
        _require_minutes_to_send(session, meeting)
    if action == "finish_avis":
        pending = [i for i in meeting.items if i.sheet_id and not i.outcome]
        if pending:
            raise InvalidInputError(f"{len(pending)} situation(s) sans avis ni ajournement.")
    if action == "hold" and secretary is not None:
        set_secretary(session, meeting, secretary)
    if action == "convene":
        invite_members(session, meeting)  # members added since the session was planned
        meeting.frozen_version = meeting.content_version
    if action in ("cancel", "postpone"):
        dismissed = _screen_release_reason(session, vault, meeting, reason, dismissals or {})
        meeting.state_reason = reason
        _release_sheets(session, vault, meeting, reason)
        audit_dismissals(session, vault, "meetings", meeting.id, dismissed, dismissals or {})
    if action == "close":
        _close_sheets(session, vault, meeting)
    meeting.state = rule.target
    if action == "convene" and (today or date.today()) <= meeting.day:
        # The frozen agenda, attached to each member's convocation (none for a past session,
        # e.g. one recorded afterwards).
        agenda = documents.request_document(session, meeting, "agenda", vault.actor.user_id)
        notifications.convoke(session, meeting, agenda)
    if action == "send_minutes":
        notifications.minutes_sent(session, meeting)
    audit_meeting(session, vault, action, meeting)
    session.flush()


def _require_minutes_to_send(session: Session, meeting: Meeting) -> None:
    """The minutes sent for visas exist, and are not the version a director sent back."""
    latest = documents.latest_document(session, meeting.id, "minutes")
    if latest is None:
        raise InvalidInputError("Générez d'abord le procès-verbal : c'est lui que les directions "
                                "viseront.")
    if any(c.document_id == latest.id for c in documents.minutes_corrections(session, meeting)):
        raise InvalidInputError(f"La version {latest.number} du procès-verbal a fait l'objet "
                                "d'une demande de correction : corrigez puis régénérez le "
                                "procès-verbal avant de le renvoyer en signature.")


def _screen_release_reason(session: Session, vault: Vault, meeting: Meeting, reason: str,
                           dismissals: dict[str, str]) -> list[SessionFinding]:
    """The reason becomes the adjournment reason of every pending situation, in the PV and
    its fiche retour: checked against each person's identity (issue 15). Returns the
    dismissed findings (the same for every person: only their own identity differs, and
    it is never dismissed)."""
    intro = ("Séance inchangée : le motif devient celui de l'ajournement de chaque situation "
             "inscrite, au procès-verbal et sur les fiches retour ; il ne doit désigner "
             "personne. Reformulez :")
    return review_session_texts(session, {"Motif": reason},
                                _identities(session, vault, meeting, pending_only=True),
                                dismissals, intro)


def _identities(session: Session, vault: Vault, meeting: Meeting, *,
                pending_only: bool = False) -> list:
    """The identities of the session's people (``pending_only``: those still to be
    examined), decrypted to check a text written about the session against (audited)."""
    return [identity for item in meeting.items
            if item.sheet is not None and not (pending_only and item.outcome)
            for identity in person_identities(session, vault, item.sheet.beneficiary,
                                              GUARD_PURPOSE)]


def _release_sheets(session: Session, vault: Vault, meeting: Meeting, reason: str) -> None:
    """A cancelled or postponed session gives its pending sheets back, proposed next time."""
    for item in meeting.items:
        if item.sheet is not None and not item.outcome and item.sheet.status == "inscrite":
            item.outcome, item.adjourn_reason = "ajourne", f"Séance annulée ou reportée : {reason}"
            sheet_transition(session, vault, item.sheet, "adjourn", actor_id=vault.actor.user_id,
                             reason=item.adjourn_reason, meeting=meeting)


def _close_sheets(session: Session, vault: Vault, meeting: Meeting) -> None:
    """Examined sheets go to follow-up when something remains to do, else they close."""
    for decision in session.scalars(select(Decision).where(Decision.meeting_id == meeting.id)):
        sheet = decision.sheet
        if sheet.status != "avis_rendu":
            continue
        pending = decision.come_back_on or any(a.done_on is None for a in decision.actions)
        sheet_transition(session, vault, sheet, "follow" if pending else "close",
                         actor_id=vault.actor.user_id)


def apply_visa(session: Session, vault: Vault, meeting: Meeting, document: GeneratedDocument,
               user: User, institution: str, sha256: str,
               pdf_sha256: str | None = None, *, confirmed: bool) -> bool:
    """A director's visa on the exact minutes file, once opened and confirmed; True once both
    institutions signed, when the session moves to « PV signé » and the final minutes
    carrying both visas are built."""
    # Visas of one session one at a time, so that of two directors signing at once the
    # second sees the first's visa and completes the signature (a row lock on PostgreSQL;
    # SQLite has one writer at a time and the count below follows this visa's insert).
    session.refresh(meeting, with_for_update=True)
    if meeting.state != "pv_en_signature":
        raise InvalidTransitionError("Ce procès-verbal n'attend pas de visa.")
    if institution not in user.institutions:
        raise InvalidInputError("Vous ne signez pas pour cette institution.")
    latest = documents.latest_document(session, meeting.id, "minutes")
    if latest is None or latest.id != document.id:
        raise InvalidTransitionError("Une version plus récente du procès-verbal existe : "
                                     "visez la dernière.")
    if any(v.institution == institution for v in documents.minutes_visas(session, document)):
        raise InvalidTransitionError("Le visa de cette institution est déjà apposé.")
    _require_read(session, document, user)
    if not confirmed:
        raise InvalidInputError("Cochez la case de confirmation : vous approuvez cette version "
                                "du procès-verbal.")
    visa = MinutesVisa(meeting_id=meeting.id, document_id=document.id, institution=institution,
                       user_id=user.id, sha256=sha256, pdf_sha256=pdf_sha256)
    session.add(visa)
    session.flush()
    audit.record(session, vault.keyring, vault.actor, "minutes_visa",
                 object_type="minutes_visas", object_ids=[visa.id], fields=[institution])
    if {v.institution for v in documents.minutes_visas(session, document)} != set(INSTITUTIONS):
        return False
    transition(session, vault, meeting, "sign_minutes")
    meeting.content_version += 1  # the final version carries both visas
    documents.request_document(session, meeting, "minutes", user.id)
    return True


def _require_read(session: Session, document: GeneratedDocument, user: User) -> None:
    if not documents.has_read_minutes(session, document, user.id):
        raise InvalidTransitionError(f"Ouvrez d'abord le procès-verbal (version "
                                     f"{document.number}) : le visa porte sur le fichier lu.")


CORRECTION_LIMIT = 2000


def request_minutes_correction(session: Session, vault: Vault, meeting: Meeting,
                               document: GeneratedDocument, user: User, institution: str,
                               comment: str) -> MinutesCorrection:
    """A director asks for a correction of the minutes awaiting visas, with a comment, instead
    of signing: the minutes go back to « PV rédigé », the circonscription's CAT are told
    (the comment stays on the session's page). The comment is screened like every session
    text: it must designate nobody (situations by their reference)."""
    session.refresh(meeting, with_for_update=True)  # not beside a visa completing the signature
    if meeting.state != "pv_en_signature":
        raise InvalidTransitionError("Ce procès-verbal n'attend pas de visa : il ne peut plus "
                                     "faire l'objet d'une demande de correction.")
    if institution not in user.institutions:
        raise InvalidInputError("Vous ne visez pas pour cette institution.")
    latest = documents.latest_document(session, meeting.id, "minutes")
    if latest is None or latest.id != document.id:
        raise InvalidTransitionError("Une version plus récente du procès-verbal existe : "
                                     "rechargez la liste.")
    if any(v.institution == institution for v in documents.minutes_visas(session, document)):
        raise InvalidTransitionError("Votre institution a déjà visé cette version : elle ne "
                                     "peut plus en demander la correction.")
    _require_read(session, document, user)
    comment = clean_text(comment, label="Correction demandée", limit=CORRECTION_LIMIT,
                         required=True, multiline=True)
    # Checked against the session's people themselves, not only the detector's guesses.
    review_session_texts(session, {"Correction demandée": comment},
                         _identities(session, vault, meeting), {},
                         "Demande non enregistrée : le commentaire est transmis à l'animation "
                         "et conservé avec la séance, il ne doit désigner personne (citez les "
                         "situations par leur référence). Reformulez :")
    correction = MinutesCorrection(meeting_id=meeting.id, document_id=document.id,
                                   institution=institution, user_id=user.id, comment=comment)
    session.add(correction)
    session.flush()
    transition(session, vault, meeting, "correct_minutes")
    notifications.minutes_correction(session, meeting, correction)
    audit.record(session, vault.keyring, vault.actor, "minutes_correction_requested",
                 object_type="minutes_corrections", object_ids=[correction.id],
                 fields=[institution])
    return correction
