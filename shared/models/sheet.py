"""Situation sheets (fiches de saisine): metadata in the clear, content encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
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
    "retour": "Retour en instance : à actualiser",
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
    # High-confidence identifying findings left in the free texts at their last review (a
    # count, no text); None: the texts changed since. The dossier is refused while > 0.
    open_findings: Mapped[int | None] = mapped_column(Integer)

    # Encrypted JSON of the sheet's fields, one column per data class (shared/sheet_schema.py).
    situation_data: Mapped[str | None] = mapped_column(Text)
    sensitive_data: Mapped[str | None] = mapped_column(Text)
    referent_data: Mapped[str | None] = mapped_column(Text)

    beneficiary: Mapped[Beneficiary] = relationship(lazy="joined")
    events: Mapped[list[SheetEvent]] = relationship(
        back_populates="sheet", order_by="SheetEvent.id", cascade="all, delete-orphan"
    )
    structure: Mapped[Structure] = relationship()
    circonscription: Mapped[Circonscription] = relationship()

    @property
    def key_owner_uuid(self) -> str:
        return self.beneficiary.uuid

    @property
    def status_label(self) -> str:
        return SHEET_STATES.get(self.status, self.status)


class SheetEvent(Base):
    """One step of a sheet's life: who moved it from which state to which, and why."""

    __tablename__ = "sheet_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)  # content chain: may describe the case

    sheet: Mapped[Sheet] = relationship(back_populates="events")

    @property
    def key_owner_uuid(self) -> str:
        return self.sheet.beneficiary.uuid


class FormStash(Base):
    """What a referent typed when their session had expired, kept encrypted for a day so
    that it can be restored after they log in again (never applied without their click)."""

    __tablename__ = "form_stashes"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"))
    # Restored only to this user (named by the signed ticket the form carried).
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    payload: Mapped[str] = mapped_column(Text)  # content chain, own data key

    @property
    def key_owner_uuid(self) -> str:
        return self.uuid


class DeidentificationCount(Base):
    """How many findings of one kind the referent replaced or dismissed in a sheet's free
    texts (issue #8), as of its last submission: counts for the statistics, never words."""

    __tablename__ = "deidentification_counts"
    __table_args__ = (UniqueConstraint("sheet_id", "kind", "outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(10))  # accepted | dismissed
    count: Mapped[int] = mapped_column(Integer)
