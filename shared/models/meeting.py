"""Sessions of the ICL-I (séances, called meetings in code), their agenda and decisions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, new_uuid, utcnow
from shared.models.reference import Circonscription
from shared.models.sheet import Sheet

MEETING_STATES = {
    "planifiee": "Planifiée",
    "odj_en_construction": "ODJ en construction",
    "convoquee": "Convoquée",
    "tenue": "Tenue",
    "avis_saisis": "Avis saisis",
    "pv_redige": "PV rédigé",
    "pv_en_signature": "PV en signature",
    "pv_signe": "PV signé / diffusé",
    "cloturee": "Clôturée",
    "annulee": "Annulée",
    "reportee": "Reportée",
}

AGENDA_PARTS = {
    "partenariat": "Partenariat, interconnaissance, projets territoriaux",
    "situation": "Études de situations",
    "icag": "ICAG : entrées, renouvellements, sorties",
    "suivi": "Suivi des préconisations",
}


class Meeting(Base):
    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    circonscription_id: Mapped[int] = mapped_column(ForeignKey("circonscriptions.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    place: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(24), default="planifiee")
    # Bumped on every agenda change: document jobs are idempotent per content version.
    content_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    circonscription: Mapped[Circonscription] = relationship()
    items: Mapped[list[AgendaItem]] = relationship(
        back_populates="meeting", order_by="AgendaItem.position", cascade="all, delete-orphan"
    )

    @property
    def state_label(self) -> str:
        return MEETING_STATES.get(self.state, self.state)


class AgendaItem(Base):
    __tablename__ = "agenda_items"
    __table_args__ = (UniqueConstraint("meeting_id", "sheet_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    part: Mapped[str] = mapped_column(String(20))  # key of AGENDA_PARTS
    sheet_id: Mapped[int | None] = mapped_column(ForeignKey("sheets.id"))
    # Non-case items (partnership) carry a title; it names no beneficiary.
    title: Mapped[str] = mapped_column(String(200), default="")
    time_slot: Mapped[str] = mapped_column(String(5), default="")  # "14:30"
    duration_minutes: Mapped[int] = mapped_column(Integer, default=15)

    meeting: Mapped[Meeting] = relationship(back_populates="items")
    sheet: Mapped[Sheet | None] = relationship()


class Decision(Base):
    """The avis of the instance on one sheet at one session."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id"), index=True)
    avis: Mapped[str] = mapped_column(String(40))  # code of reference data
    needs_formal_decision: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    motivation: Mapped[str | None] = mapped_column(Text)  # content chain

    sheet: Mapped[Sheet] = relationship()

    @property
    def key_owner_uuid(self) -> str:
        return self.sheet.beneficiary.uuid
