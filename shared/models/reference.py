"""Reference data that administrators edit: circonscriptions and structures."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base

STRUCTURE_TYPES = {
    "service_social_departemental": "Service social départemental (circonscription)",
    "service_social_municipal": "Service social municipal / CCAS",
    "agence_france_travail": "Agence France Travail",
    "ali": "Agence Locale d'Insertion",
    "association_rsa": "Association référente RSA",
    "dieess": "DIEESS (Département)",
}


class Circonscription(Base):
    __tablename__ = "circonscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)  # e.g. "C07", used in references
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    structures: Mapped[list[Structure]] = relationship(back_populates="circonscription")


class Structure(Base):
    __tablename__ = "structures"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(160))
    type: Mapped[str] = mapped_column(String(40))
    circonscription_id: Mapped[int | None] = mapped_column(ForeignKey("circonscriptions.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    circonscription: Mapped[Circonscription | None] = relationship(back_populates="structures")

    @property
    def type_label(self) -> str:
        return STRUCTURE_TYPES.get(self.type, self.type)


class ReferenceItem(Base):
    """An entry of an enumeration administrators edit (motifs, freins, avis, contrats…).

    Codes are stable (sheets store them); labels change with the vocabulary; an entry in
    use is deactivated, never deleted.
    """

    __tablename__ = "reference_items"
    __table_args__ = (UniqueConstraint("kind", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    code: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
