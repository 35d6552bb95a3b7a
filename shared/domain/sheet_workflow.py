"""The sheet lifecycle: guarded transitions, each with a history event and an audit row.

brouillon → soumise → (à compléter ↔ soumise) → recevable → inscrite → examinée →
avis rendu | ajournée → suivi → close, plus retirée and non recevable. A situation in suivi
comes back (retour en instance): its referent updates the texts, then it is recevable again
and inscribed as a new passage of the same sheet.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from shared import deidentify
from shared.db import utcnow
from shared.domain import audit, notifications
from shared.domain.sheets import (
    SheetInvalidError,
    identity_hits,
    read_values,
    sheet_identity,
    validate_values,
)
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError
from shared.models import DeidentificationCount, Meeting, Sheet, SheetEvent
from shared.models.sheet import SHEET_STATES
from shared.text import clean_text


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str
    label: str  # French, for messages
    needs_reason: bool = False


TRANSITIONS = {
    "submit": Transition(frozenset({"brouillon", "a_completer"}), "soumise", "soumettre"),
    "withdraw": Transition(frozenset({"brouillon", "soumise", "a_completer", "recevable"}),
                           "retiree", "retirer", needs_reason=True),
    "return": Transition(frozenset({"soumise"}), "a_completer", "renvoyer pour complément",
                         needs_reason=True),
    "accept": Transition(frozenset({"soumise"}), "recevable", "déclarer recevable"),
    "reject": Transition(frozenset({"soumise"}), "non_recevable", "déclarer non recevable",
                         needs_reason=True),
    "inscribe": Transition(frozenset({"recevable", "ajournee"}), "inscrite", "inscrire"),
    "examine": Transition(frozenset({"inscrite"}), "examinee", "marquer examinée"),
    "record_avis": Transition(frozenset({"examinee"}), "avis_rendu", "enregistrer l'avis"),
    "adjourn": Transition(frozenset({"inscrite", "examinee"}), "ajournee", "ajourner",
                          needs_reason=True),
    "follow": Transition(frozenset({"avis_rendu"}), "suivi", "passer en suivi"),
    "close": Transition(frozenset({"avis_rendu", "suivi"}), "close", "clore"),
    "bring_back": Transition(frozenset({"suivi"}), "retour", "faire revenir en instance"),
    # Already found receivable: the updated sheet goes straight back to the candidates.
    "resubmit": Transition(frozenset({"retour"}), "recevable", "renvoyer la fiche actualisée"),
}

REASON_LIMIT = 1000


def allowed_actions(sheet: Sheet) -> set[str]:
    return {name for name, t in TRANSITIONS.items() if sheet.status in t.sources}


def transition(session: Session, vault: Vault, sheet: Sheet, action: str, *,
               actor_id: int | None, reason: str = "",
               meeting: Meeting | None = None) -> SheetEvent:
    """Move the sheet, or raise a French error and change nothing. Whoever must know is
    notified in the same transaction (``meeting``: the session it is inscribed on or
    adjourned from)."""
    rule = TRANSITIONS[action]
    if sheet.status not in rule.sources:
        of = "d'" if rule.label[0] in "aeéiou" else "de "
        raise InvalidTransitionError(
            f"Impossible {of}{rule.label} une fiche « {SHEET_STATES[sheet.status]} »."
        )
    reason = clean_text(reason, label="Motif", limit=REASON_LIMIT, multiline=True)
    if rule.needs_reason and not reason:
        raise InvalidInputError(f"Indiquez le motif pour {rule.label} la fiche.")
    # Compare-and-swap: of two concurrent transitions from the same state, one wins. The
    # UPDATE also moves the loaded sheet, so the state it leaves is read before (issue 15).
    source = sheet.status
    moved = session.execute(update(Sheet).where(Sheet.id == sheet.id, Sheet.status == source)
                            .values(status=rule.target)).rowcount
    if moved != 1:
        session.refresh(sheet)
        raise InvalidTransitionError("La fiche vient d'être modifiée par quelqu'un d'autre : "
                                     "rechargez la page.")
    event = _event(session, vault, sheet, action, source, rule.target, actor_id, reason)
    sheet.status = rule.target
    if action == "submit":
        sheet.submitted_at = utcnow()
    sheet.beneficiary.last_activity_at = utcnow()
    audit.record(session, vault.keyring, vault.actor, f"sheet_{action}", object_type="sheets",
                 object_ids=[sheet.id])
    notifications.sheet_moved(session, sheet, action, meeting)
    session.flush()
    return event


def _event(session: Session, vault: Vault, sheet: Sheet, action: str, source: str,
           target: str, actor_id: int | None, comment: str) -> SheetEvent:
    event = SheetEvent(sheet=sheet, actor_id=actor_id, action=action,
                       from_status=source, to_status=target)
    session.add(event)
    session.flush()
    if comment:
        vault.seal(event, "comment", comment)
    return event


def note(session: Session, vault: Vault, sheet: Sheet, action: str, *, actor_id: int | None,
         comment: str) -> SheetEvent:
    """A history entry that changes no state (e.g. why the identity was looked at)."""
    comment = clean_text(comment, label="Motif", limit=REASON_LIMIT, multiline=True)
    event = _event(session, vault, sheet, action, sheet.status, sheet.status, actor_id,
                   comment)
    session.flush()
    return event


REVEAL_REASON_MIN = 5


def reveal_identity(session: Session, vault: Vault, sheet: Sheet, *, actor_id: int | None,
                    reason: str) -> dict[str, str]:
    """A facilitator's explicit look at the person's identity, with a reason: sealed in the
    sheet's history (it may describe the case), the decryption audited naming that event."""
    if len(reason.strip()) < REVEAL_REASON_MIN:
        raise InvalidInputError("Indiquez pourquoi vous avez besoin de l'identité "
                                f"({REVEAL_REASON_MIN} caractères au moins).")
    event = note(session, vault, sheet, "reveal_identity", actor_id=actor_id,
                 comment=reason.strip())
    return sheet_identity(session, vault, sheet,
                          f"levée du pseudonyme (motif : événement {event.id})")


class GuardHitsError(InvalidInputError):
    """Free texts contain the person's own identity; ``hits`` maps field -> kinds found."""

    def __init__(self, hits: dict[str, list[str]]) -> None:
        super().__init__("Certains textes contiennent l'identité de la personne, qui ne peut "
                         "figurer dans aucun texte transmis à l'instance : reformulez-les "
                         "avant de soumettre.")
        self.hits = hits


class FindingsOpenError(InvalidInputError):
    """Free texts hold identifying words the referent has not handled yet (issue #8)."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} élément(s) identifiant(s) à traiter dans les textes avant "
                         "de soumettre : remplacez-les, reformulez ou indiquez qu'ils "
                         "n'identifient personne.")
        self.count = count


def submit(session: Session, vault: Vault, sheet: Sheet, labels: dict[str, dict[str, str]], *,
           actor_id: int | None) -> SheetEvent:
    """Check completeness, the free-text guard and the de-identification review, then
    submit (a returning sheet: resubmit); the referent's review decisions are counted for
    the statistics. The person's own identity in a free text is always refused: the texts
    reach the session dossier, which names the person by reference only (issue 15)."""
    action = "resubmit" if sheet.status == "retour" else "submit"
    if sheet.status not in TRANSITIONS[action].sources:
        return transition(session, vault, sheet, action, actor_id=actor_id)  # raises
    values = read_values(vault, sheet, purpose="soumission de la fiche")
    errors = validate_values(values, labels, submitting=True)
    if errors:
        raise SheetInvalidError(errors)
    identity = sheet_identity(session, vault, sheet, "contrôle des textes libres")
    hits = identity_hits(identity, values)
    if hits:
        raise GuardHitsError(hits)
    found = deidentify.findings(values)  # one analysis of the texts for both uses
    open_findings = deidentify.unhandled(values, found)
    if open_findings:
        raise FindingsOpenError(len(open_findings))
    _record_review_counts(session, sheet, deidentify.decision_counts(values, found))
    sheet.open_findings = 0
    return transition(session, vault, sheet, action, actor_id=actor_id)


def _record_review_counts(session: Session, sheet: Sheet,
                          counts: dict[tuple[str, str], int]) -> None:
    """The sheet's decisions as of this submission (a resubmission replaces them)."""
    session.execute(delete(DeidentificationCount).where(
        DeidentificationCount.sheet_id == sheet.id))
    session.add_all(DeidentificationCount(sheet_id=sheet.id, kind=kind, outcome=outcome,
                                          count=count)
                    for (kind, outcome), count in sorted(counts.items()))

