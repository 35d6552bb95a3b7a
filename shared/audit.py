"""Audit trail: MAC-chained rows, written in the caller's transaction (SECURITY.md rule 11).

A row's MAC covers its fields and the previous row's MAC under the audit secret, so editing,
deleting or reordering a row breaks the chain from that row on. Writers serialise on the
single ``audit_head`` row (its UPDATE takes the row lock on PostgreSQL, the write lock on
SQLite). Callers that decrypt must record first: if the row cannot be written, they stop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.crypto import KeyRing, mac, mac_matches
from shared.db import utcnow
from shared.models import AuditEvent, AuditHead

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who acts: a user id, or a process label such as "cli" or "worker"."""

    user_id: int | None
    label: str = "user"


CLI = Actor(None, "cli")
WORKER = Actor(None, "worker")


def _row_mac(secret: bytes, prev_mac: str, event: AuditEvent) -> str:
    return mac(secret, *_mac_parts(prev_mac, event))


def record(
    session: Session,
    keyring: KeyRing,
    actor: Actor,
    action: str,
    *,
    object_type: str = "",
    object_ids: Iterable[int | str] = (),
    fields: Iterable[str] = (),
    purpose: str = "",
) -> AuditEvent:
    """Append one chained audit row and flush it; raises if it cannot be written."""
    secret = keyring.secret("audit")
    head = _locked_head(session)
    event = AuditEvent(
        seq=head.seq + 1,
        at=utcnow(),
        actor_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        object_type=object_type,
        object_ids=",".join(str(i) for i in object_ids),
        fields=",".join(fields),
        purpose=purpose[:200],
    )
    event.mac = _row_mac(secret, head.mac, event)
    head.seq, head.mac = event.seq, event.mac
    session.add(event)
    session.flush()
    return event


def _locked_head(session: Session) -> AuditHead:
    # UPDATE first: it takes the lock before we read, so two writers cannot fork the chain.
    result = session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))
    if result.rowcount == 0:
        session.add(AuditHead(id=1, seq=0, mac=""))
        session.flush()
    return session.execute(
        select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    ).scalar_one()


@dataclass(frozen=True)
class ChainReport:
    rows: int
    ok: bool
    first_broken_id: int | None = None  # None when the break is after the last row
    reason: str = ""


def verify_chain(session: Session, keyring: KeyRing, batch: int = 5000) -> ChainReport:
    """Walk the chain in sequence order; name the first row whose MAC or order is wrong."""
    secret = keyring.secret("audit")
    prev_mac, expected_seq, count, last_id = "", 1, 0, 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq >= expected_seq)
            .order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            break
        for event in rows:
            count += 1
            if event.seq != expected_seq:
                return ChainReport(count, False, event.id, f"sequence gap before seq {event.seq}")
            if not mac_matches(secret, event.mac, *_mac_parts(prev_mac, event)):
                return ChainReport(count, False, event.id, "MAC mismatch")
            prev_mac, expected_seq, last_id = event.mac, expected_seq + 1, event.id
    # The head row anchors the end: rows deleted at the tail leave it ahead of the chain.
    head = session.get(AuditHead, 1)
    head_seq, head_mac = (head.seq, head.mac) if head is not None else (None, None)
    if (head is None and count) or (head is not None and (head_seq, head_mac) != (count, prev_mac)):
        return ChainReport(count, False, last_id or None,
                           "chain truncated after the last row" if count else "chain emptied")
    return ChainReport(count, True)


def _mac_parts(prev_mac: str, event: AuditEvent) -> tuple:
    return (
        "icli.audit.v1",
        prev_mac,
        event.seq,
        event.at.isoformat(timespec="microseconds"),
        event.actor_id if event.actor_id is not None else "",
        event.actor_label,
        event.action,
        event.object_type,
        event.object_ids,
        event.fields,
        event.purpose,
    )
