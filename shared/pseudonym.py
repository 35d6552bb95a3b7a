"""Pseudonyms and references: everything that leaves the database names people by these."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import Beneficiary, Sheet

# Crockford-like alphabet without 0/O, 1/I/L, U: readable aloud and on paper.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
PSEUDONYM_LENGTH = 6


def random_pseudonym() -> str:
    """Random, not derived from identity (docs/security.md, rule 7): e.g. ``P-7K3Q9M``."""
    return "P-" + "".join(secrets.choice(_ALPHABET) for _ in range(PSEUDONYM_LENGTH))


def new_pseudonym(session: Session) -> str:
    """A pseudonym no beneficiary has yet (30^6 values: collisions are rare, still checked)."""
    while True:
        candidate = random_pseudonym()
        taken = session.scalar(select(Beneficiary.id).where(Beneficiary.pseudonym == candidate))
        if taken is None:
            return candidate


def next_sheet_reference(session: Session, circonscription_code: str, year: int) -> str:
    """Readable sheet reference ``ICL-C07-2026-0042``: sequence per circonscription and year."""
    prefix = f"ICL-{circonscription_code}-{year}-"
    last = session.scalar(
        select(func.max(Sheet.reference)).where(Sheet.reference.like(prefix + "%"))
    )
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{number:04d}"
