"""Generated documents (encrypted) and the document jobs that build them (the outbox)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, new_uuid, utcnow
from shared.models.sheet import Sheet

DOCUMENT_KINDS = {
    "agenda": "Ordre du jour",
    "dossier": "Dossier de séance",
    "attendance": "Feuille d'émargement",
    "minutes": "Procès-verbal / relevé de décisions",
    "feedback": "Fiche retour au référent",
    "information": "Note d'information de la personne",
}
# Documents about one situation: one per inscribed sheet, keyed by it.
PER_SHEET_KINDS = {"feedback"}
# Documents about one sheet outside any session (no meeting).
SHEET_ONLY_KINDS = {"information"}
INSTITUTIONS = {"departement": "Département (DGA ou délégataire)",
                "france_travail": "France Travail (Directrice territoriale ou délégataire)"}

JOB_STATES = {
    "queued": "En attente",
    "running": "En cours",
    "done": "Terminé",
    "failed": "Échec",
}


class GeneratedDocument(Base):
    __tablename__ = "generated_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    # None for a sheet's own document (the information note).
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"), index=True)
    sheet_id: Mapped[int | None] = mapped_column(ForeignKey("sheets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    content_version: Mapped[int] = mapped_column(Integer)
    # The version as printed: v1, v2… per (session, kind, sheet), whatever the session's
    # content version (its edit counter) is.
    number: Mapped[int] = mapped_column(Integer, default=1)
    filename: Mapped[str] = mapped_column(String(120))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    # The uploaded template version used; None for the built-in one.
    template_version_id: Mapped[int | None] = mapped_column(ForeignKey("template_versions.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Deferred: lists of documents never load the files themselves.
    body: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # content chain
    pdf_body: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)  # when converted
    pdf_size: Mapped[int | None] = mapped_column(Integer)

    sheet: Mapped[Sheet | None] = relationship()

    @property
    def key_owner_uuid(self) -> str:
        # About one person: their keys, so that a purge shreds it with the rest.
        return self.sheet.beneficiary.uuid if self.sheet is not None else self.uuid


class DocumentJob(Base):
    """Source of truth for a document request; the RQ job only carries its id."""

    __tablename__ = "document_jobs"
    __table_args__ = (UniqueConstraint("meeting_id", "kind", "content_version", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    content_version: Mapped[int] = mapped_column(Integer)
    # "" for a session document, the sheet id for a per-sheet one (unique with NULL-free key).
    subject: Mapped[str] = mapped_column(String(20), default="")
    sheet_id: Mapped[int | None] = mapped_column(ForeignKey("sheets.id"))
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    step: Mapped[str] = mapped_column(String(40), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(String(400))  # French, no personal data
    document_id: Mapped[int | None] = mapped_column(ForeignKey("generated_documents.id"))

    document: Mapped[GeneratedDocument | None] = relationship()

    @property
    def status_label(self) -> str:
        return JOB_STATES.get(self.status, self.status)


class TemplateVersion(Base):
    """A Word template uploaded by an administrator; checked before use, one active per kind.

    Templates hold no personal data: stored as they are."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("kind", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class MinutesVisa(Base):
    """A director's authenticated approval of the exact minutes file (its SHA-256)."""

    __tablename__ = "minutes_visas"
    __table_args__ = (UniqueConstraint("document_id", "institution"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("generated_documents.id"))
    institution: Mapped[str] = mapped_column(String(20))  # key of INSTITUTIONS
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sha256: Mapped[str] = mapped_column(String(64))  # of the .docx
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))  # of the PDF, when there is one


class MinutesReading(Base):
    """A director opened (downloaded) this version of the minutes: a visa needs it."""

    __tablename__ = "minutes_readings"
    __table_args__ = (UniqueConstraint("document_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("generated_documents.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MinutesCorrection(Base):
    """A director's request to correct a version of the minutes, instead of a visa. The
    comment is screened like every session text: it names situations by reference only."""

    __tablename__ = "minutes_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("generated_documents.id"))
    institution: Mapped[str] = mapped_column(String(20))  # key of INSTITUTIONS
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
