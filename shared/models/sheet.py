"""Situation sheets (fiches de saisine): metadata in the clear, content encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, new_uuid, utcnow
from shared.models.beneficiary import Beneficiary
from shared.models.reference import Circonscription, Structure

SHEET_STATES = {
    "brouillon": "Brouillon",
    "soumise": "Soumise",
    "a_completer": "À compléter",
    "recevable": "Recevable",
    "non_recevable": "Non recevable",
    "inscrite": "Inscrite",
    "examinee": "Examinée",
    "avis_rendu": "Avis rendu",
    "ajournee": "Ajournée",
    "suivi": "Suivi",
    "close": "Close",
    "retiree": "Retirée",
}


class Sheet(Base):
    __tablename__ = "sheets"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    reference: Mapped[str] = mapped_column(String(32), unique=True)  # ICL-C07-2026-0042
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    structure_id: Mapped[int] = mapped_column(ForeignKey("structures.id"), index=True)
    circonscription_id: Mapped[int] = mapped_column(ForeignKey("circonscriptions.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20), default="brouillon", index=True)
    motif: Mapped[str | None] = mapped_column(String(40))  # code of reference data
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime)

    # Content chain ciphertexts (see shared/protected.py).
    situation: Mapped[str | None] = mapped_column(Text)
    question: Mapped[str | None] = mapped_column(Text)
    proposition: Mapped[str | None] = mapped_column(Text)

    beneficiary: Mapped[Beneficiary] = relationship(lazy="joined")
    structure: Mapped[Structure] = relationship()
    circonscription: Mapped[Circonscription] = relationship()

    @property
    def key_owner_uuid(self) -> str:
        return self.beneficiary.uuid

    @property
    def status_label(self) -> str:
        return SHEET_STATES.get(self.status, self.status)
