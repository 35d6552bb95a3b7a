"""Situation sheets: creation with a readable reference (the lifecycle grows in issue 3)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.encrypted import Vault
from shared.errors import InvalidInput
from shared.models import Beneficiary, Sheet, Structure
from shared.pseudonym import next_sheet_reference

CONTENT_LIMITS = {"situation": 4000, "question": 1000, "proposition": 1000}


def create_sheet(session: Session, vault: Vault, *, beneficiary: Beneficiary,
                 structure: Structure, author_id: int | None, motif: str | None,
                 content: dict[str, str], status: str = "brouillon") -> Sheet:
    """A sheet for ``beneficiary`` filed by ``structure``, routed to its circonscription."""
    if structure.circonscription is None:
        raise InvalidInput("La structure n'est rattachée à aucune circonscription.")
    for field, text in content.items():
        if len(text) > CONTENT_LIMITS[field]:
            raise InvalidInput(f"Le champ {field} dépasse {CONTENT_LIMITS[field]} caractères.")
    now = utcnow()
    sheet = Sheet(
        reference=next_sheet_reference(session, structure.circonscription.code, now.year),
        beneficiary=beneficiary, structure_id=structure.id,
        circonscription_id=structure.circonscription.id, author_id=author_id, motif=motif,
        status=status, submitted_at=now if status != "brouillon" else None,
    )
    session.add(sheet)
    session.flush()
    for field, text in content.items():
        vault.seal(sheet, field, text)
    beneficiary.last_activity_at = now
    session.flush()
    return sheet
