"""Wrapped data keys per record and chain, and the public metadata of key versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, utcnow


class RecordKey(Base):
    """A DEK wrapped by a KEK version of its chain (docs/security.md, rule 2)."""

    __tablename__ = "record_keys"
    # Rotation walks one chain's keys on one KEK version in uuid order (keyset batches);
    # on SQLite the rows are stored in that order too (WITHOUT ROWID, migration 0012).
    __table_args__ = (Index("ix_record_keys_rotation", "chain", "kek_version", "record_uuid",
                            "dek_version"), {"sqlite_with_rowid": False})

    record_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    chain: Mapped[str] = mapped_column(String(10), primary_key=True)
    dek_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    kek_version: Mapped[int] = mapped_column(Integer)
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class KeyVersionRecord(Base):
    """What the database knows of a key version: fingerprint and state, never the key."""

    __tablename__ = "key_versions"

    chain: Mapped[str] = mapped_column(String(10), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ProcessHeartbeat(Base):
    """A live intake or worker process and the key versions it holds (numbers, no key).
    ``promote`` waits until every process seen recently holds the version."""

    __tablename__ = "process_heartbeats"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # random per process
    kind: Mapped[str] = mapped_column(String(10))  # intake | worker
    host: Mapped[str] = mapped_column(String(64))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    held: Mapped[str] = mapped_column(String(400))  # JSON {"content": [1, 2], …}
    converts_pdf: Mapped[bool | None] = mapped_column(Boolean)  # workers: LibreOffice ready


class KeyRotation(Base):
    """Progress of rewrapping one chain's data keys to a version, committed with each batch:
    a killed rotation resumes where its last batch ended."""

    __tablename__ = "key_rotations"

    id: Mapped[int] = mapped_column(primary_key=True)
    chain: Mapped[str] = mapped_column(String(10), index=True)
    target_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="running")  # running | done
    total: Mapped[int] = mapped_column(Integer, default=0)  # rows to rewrap at the start
    done: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[str] = mapped_column(String(60), default="")  # last row rewrapped
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
