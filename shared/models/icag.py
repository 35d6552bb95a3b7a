"""Accompagnement global (ICAG): one period per person, and the session steps that made it."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, new_uuid, utcnow
from shared.models.beneficiary import Beneficiary
from shared.models.meeting import AgendaItem
from shared.models.reference import Structure
from shared.models.sheet import Sheet

# Why an accompagnement global ended (organisational categories, never a narrative).
EXIT_REASONS = {
    "objectifs_atteints": "Objectifs atteints",
    "emploi_formation": "Accès à l'emploi ou à une formation",
    "reorientation": "Réorientation vers un autre accompagnement",
    "souhait_personne": "À la demande de la personne",
    "non_adhesion": "Non-adhésion à l'accompagnement",
    "demenagement": "Déménagement hors du territoire",
    "fin_droits": "Fin de droits au RSA",
    "terme": "Terme atteint sans renouvellement",
    "autre": "Autre motif",
}


class GlobalSupport(Base):
    """An accompagnement global: from its entry to its exit, with its 12-month term."""

    __tablename__ = "global_supports"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    # The sheet that brought the entry: its author is the referent told before the term.
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id"), index=True)
    circonscription_id: Mapped[int] = mapped_column(ForeignKey("circonscriptions.id"),
                                                    index=True)
    started_on: Mapped[date] = mapped_column(Date)
    # End of the current 12-month term; a renewal moves it 12 months on.
    term_ends_on: Mapped[date] = mapped_column(Date, index=True)
    ended_on: Mapped[date | None] = mapped_column(Date)  # the exit; None while it runs
    exit_reason: Mapped[str] = mapped_column(String(30), default="")  # key of EXIT_REASONS
    # The diagnostic partagé that preceded the entry: its date, the structure that led it,
    # and the freins it found as category codes (content chain, sensitive: santé, justice…).
    diagnostic_on: Mapped[date] = mapped_column(Date)
    diagnostic_structure_id: Mapped[int] = mapped_column(ForeignKey("structures.id"))
    diagnostic_categories: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    beneficiary: Mapped[Beneficiary] = relationship()
    sheet: Mapped[Sheet] = relationship()
    diagnostic_structure: Mapped[Structure] = relationship()
    steps: Mapped[list[GlobalSupportStep]] = relationship(
        back_populates="support", order_by="GlobalSupportStep.id", cascade="all, delete-orphan")

    @property
    def key_owner_uuid(self) -> str:
        return self.beneficiary.uuid

    @property
    def exit_reason_label(self) -> str:
        return EXIT_REASONS.get(self.exit_reason, "")


class GlobalSupportStep(Base):
    """What one ICAG agenda item recorded (entry, renewal or exit), as it was that day: the
    minutes of that session keep showing it after later renewals."""

    __tablename__ = "global_support_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    support_id: Mapped[int] = mapped_column(ForeignKey("global_supports.id", ondelete="CASCADE"),
                                            index=True)
    agenda_item_id: Mapped[int] = mapped_column(ForeignKey("agenda_items.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(15))  # key of ICAG_KINDS
    on_date: Mapped[date] = mapped_column(Date)  # start, renewal or end date
    term_ends_on: Mapped[date] = mapped_column(Date)
    exit_reason: Mapped[str] = mapped_column(String(30), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    support: Mapped[GlobalSupport] = relationship(back_populates="steps")
    agenda_item: Mapped[AgendaItem] = relationship()
