"""Wrapped data keys per record and chain, and the public metadata of key versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, utcnow


class RecordKey(Base):
    """A DEK wrapped by a KEK version of its chain (SECURITY.md rule 2)."""

    __tablename__ = "record_keys"

    record_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    chain: Mapped[str] = mapped_column(String(10), primary_key=True)
    dek_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    kek_version: Mapped[int] = mapped_column(Integer, index=True)
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
