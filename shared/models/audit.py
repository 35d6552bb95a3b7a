"""Audit events: each row MACed on its own when written, then chained by the sealer.

A writer inserts its row with ``row_mac`` (its content and id under the audit secret) and
touches nothing shared; the sealer (``shared.domain.audit.seal``, in the worker's maintenance
step) later gives committed rows their place in the chain: ``seq`` and ``mac``, which covers
the previous row's ``mac``. Rows written before migration 0020 have no ``row_mac``: their
``mac`` covers their content directly (chain format v1).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)  # chain order; None: unsealed
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)  # users.id, kept on purge
    actor_label: Mapped[str] = mapped_column(String(40))  # "user", "cli", "worker"
    action: Mapped[str] = mapped_column(String(40), index=True)
    object_type: Mapped[str] = mapped_column(String(40), default="")
    object_ids: Mapped[str] = mapped_column(Text, default="")  # comma-separated ids, no values
    fields: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(String(200), default="")
    mac: Mapped[str | None] = mapped_column(String(64))  # the chain's MAC, set by the sealer
    row_mac: Mapped[str | None] = mapped_column(String(64))  # set by the writer (None: v1 row)


class AuditHead(Base):
    """One row holding the sealed chain's last sequence number and MAC; only the sealer (and
    the retention's purge) writes it, under its row lock: one sealer at a time.

    ``sig`` MACs (seq, mac) under the audit secret: deleting rows at the tail and moving the
    head back is detected until the next seal; the signed checkpoints exported
    outside the database (``shared.audit_checkpoint``) detect it after that.

    The anchor is where verification starts once old rows were deleted by the retention:
    the sequence number and MAC of the last deleted row, with a MAC of the pair under the
    audit secret so that nobody without it can move the anchor forward over deleted rows.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    mac: Mapped[str] = mapped_column(String(64), default="")
    anchor_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    anchor_mac: Mapped[str] = mapped_column(String(64), default="", server_default="")
    anchor_sig: Mapped[str] = mapped_column(String(64), default="", server_default="")
    sig: Mapped[str] = mapped_column(String(64), default="", server_default="")


class AuditReanchor(Base):
    """An administrator's signed statement that rows ``from_seq``..``to_seq`` were MACed under
    another audit key (a wrong keyring) and cannot be verified: verification accepts them as
    they are now (the last one's MAC is pinned) and reports the break as repaired, for good.
    """

    __tablename__ = "audit_reanchors"

    id: Mapped[int] = mapped_column(primary_key=True)
    from_seq: Mapped[int] = mapped_column(Integer, unique=True)
    to_seq: Mapped[int] = mapped_column(Integer)
    last_mac: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sig: Mapped[str] = mapped_column(String(64))
