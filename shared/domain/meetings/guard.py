"""Free texts typed about a situation in session, checked against the person's identity before
they reach the PV and the fiche retour."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shared.domain import audit
from shared.domain.screening import SessionFinding, TextsNeedReviewError, review_session_texts
from shared.domain.sheets import person_identities
from shared.encrypted import Vault
from shared.errors import InvalidTransitionError
from shared.models import Sheet

GUARD_PURPOSE = "contrôle des textes saisis en séance"


def review_sheet_texts(session: Session, vault: Vault, sheet: Sheet, texts: dict[str, str],
                       dismissals: dict[str, str], intro: str) -> list[SessionFinding]:
    """Texts about one situation that reach the PV and the fiche retour: the dismissed
    findings, or ``TextsNeedReviewError`` (the person's own identity is never dismissable)."""
    if not any(texts.values()):
        return []
    if sheet.beneficiary.purged_at is not None:
        # Its identity is shredded: nothing could tell whether a text names the person, and
        # a text typed now would outlive the purge in the PV and the fiche retour.
        raise InvalidTransitionError(
            f"Les données de la personne de la situation {sheet.reference} ont été effacées "
            "au terme de leur durée de conservation : aucun texte ne peut plus être ajouté à "
            "cette situation, faute de pouvoir vérifier qu'il ne la désigne pas.")
    # The identity is decrypted (an audited read) only when there is text to check.
    try:
        return review_session_texts(
            session, texts, person_identities(session, vault, sheet.beneficiary, GUARD_PURPOSE),
            dismissals, intro)
    except TextsNeedReviewError as refused:
        # The page shows which typed words are the person's: repeated refusals are how one
        # would probe an identity, so each one stays in the audit log for the DPO.
        own = sorted({f.kind for review in refused.reviews for f in review["findings"]
                      if f.own_identity})
        if own:
            audit.record_after(session, vault.keyring, vault.actor, "identity_guard_refused",
                               object_type="sheets", object_ids=[sheet.id], fields=own)
        raise


