"""The person a situation sheet is about, and each structure's own record of their identity.

A beneficiary is the pseudonym and the data keys (one purge shreds everything about them).
Their identity is kept per structure: a structure sees what it typed, never what another
structure following the same person recorded.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, new_uuid, utcnow


class Beneficiary(Base):
    __tablename__ = "beneficiaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    pseudonym: Mapped[str] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Set by the retention purge: identity, keys and contents are gone; the pseudonym stays
    # because the kept minutes (PV) name the situation by it.
    purged_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def key_owner_uuid(self) -> str:
        return self.uuid


class IdentityRecord(Base):
    """One structure's record of a beneficiary's identity (identity chain, their DEK)."""

    __tablename__ = "identity_records"
    __table_args__ = (UniqueConstraint("beneficiary_id", "structure_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structures.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    # Blind indexes (truncated HMAC buckets) for duplicate candidates, versioned for rotation.
    index_version: Mapped[int] = mapped_column(Integer, default=1)
    # Bits kept in these indexes (sized from the expected population, issue 16); rows
    # written before that kept 14.
    index_bits: Mapped[int] = mapped_column(Integer, server_default="14")
    idx_name_birth: Mapped[int | None] = mapped_column(Integer, index=True)
    idx_caf: Mapped[int | None] = mapped_column(Integer, index=True)
    idx_france_travail: Mapped[int | None] = mapped_column(Integer, index=True)

    # Identity chain ciphertexts (see shared/protected.py).
    nom: Mapped[str | None] = mapped_column(Text)
    prenom: Mapped[str | None] = mapped_column(Text)
    nom_naissance: Mapped[str | None] = mapped_column(Text)
    date_naissance: Mapped[str | None] = mapped_column(Text)
    numero_caf: Mapped[str | None] = mapped_column(Text)
    identifiant_france_travail: Mapped[str | None] = mapped_column(Text)
    adresse: Mapped[str | None] = mapped_column(Text)
    code_postal: Mapped[str | None] = mapped_column(Text)
    commune: Mapped[str | None] = mapped_column(Text)
    telephone: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)

    beneficiary: Mapped[Beneficiary] = relationship(lazy="joined")

    @property
    def key_owner_uuid(self) -> str:
        return self.beneficiary.uuid
