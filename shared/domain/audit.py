"""Audit trail: MAC-chained rows, written in the caller's transaction (docs/security.md, rule 11).

A row's MAC covers its fields and the previous row's MAC under the audit secret, so editing,
deleting or reordering a row breaks the chain from that row on. Writers serialise on the
single ``audit_head`` row (its UPDATE takes the row lock on PostgreSQL, the write lock on
SQLite), whose (seq, mac) is itself MACed: deleting the tail and moving the head back is
detected. Restoring an older signed head (from a backup) with the tail deleted is detected
only against a checkpoint kept outside the database (``shared.audit_checkpoint``).
Callers that decrypt must record first: if the row cannot be written, they stop.

Rows once MACed under a wrong audit key can only be accepted as they are by an
administrator's signed, audited re-anchor (``reanchor``); verification names it for good.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from shared.crypto import KeyRing, mac, mac_matches
from shared.db import utcnow
from shared.errors import InvalidTransition
from shared.models import AuditEvent, AuditHead, AuditReanchor

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
    head.sig = mac(secret, *_head_parts(head))
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
    first_broken_at: datetime | None = None
    first_broken_seq: int | None = None
    reanchored: tuple[str, ...] = ()  # breaks repaired by an administrator's re-anchor


def verify_chain(session: Session, keyring: KeyRing, batch: int = 5000) -> ChainReport:
    """Walk the chain in sequence order from the retention anchor; name the first row that
    was edited (MAC mismatch), follows deleted rows (gap) or was moved (order), or a head
    moved back over deleted rows; rows covered by a signed re-anchor are taken as pinned."""
    secret = keyring.secret("audit")
    head = session.get(AuditHead, 1)
    prev_mac, expected_seq = "", 1
    if head is not None and head.anchor_seq:
        if not mac_matches(secret, head.anchor_sig, *_anchor_parts(head)):
            return ChainReport(0, False, None, "retention anchor forged")
        prev_mac, expected_seq = head.anchor_mac, head.anchor_seq + 1
    reanchors = {r.from_seq: r for r in session.scalars(select(AuditReanchor))}
    if any(not mac_matches(secret, r.sig, *_reanchor_parts(r)) for r in reanchors.values()):
        return ChainReport(0, False, None, "re-anchor forged")
    count, last_id, repaired = 0, 0, []
    # The retention may have purged the start of a re-anchored range.
    pinned_until = next((r for r in reanchors.values()
                         if r.from_seq < expected_seq <= r.to_seq), None)
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
                return ChainReport(count, False, event.id,
                                   f"gap: row(s) missing before seq {event.seq}", event.at,
                                   event.seq)
            if event.seq in reanchors:
                pinned_until = reanchors[event.seq]
                repaired.append(_describe_reanchor(pinned_until))
            if pinned_until is not None:  # unverifiable, kept as the re-anchor found them
                if event.seq == pinned_until.to_seq:
                    if event.mac != pinned_until.last_mac:
                        return ChainReport(count, False, event.id,
                                           "re-anchored row changed", event.at, event.seq)
                    pinned_until = None
            elif not mac_matches(secret, event.mac, *_mac_parts(prev_mac, event)):
                reason = ("order: row moved out of its place in the chain"
                          if _out_of_order(session, event, last_id) else "MAC mismatch")
                return ChainReport(count, False, event.id, reason, event.at, event.seq)
            prev_mac, expected_seq, last_id = event.mac, expected_seq + 1, event.id
    # The head row anchors the end: rows deleted at the tail leave it ahead of the chain,
    # and moving it back needs its MAC.
    if (head is None and count) or (
            head is not None and (head.seq, head.mac) != (expected_seq - 1, prev_mac)):
        return ChainReport(count, False, last_id or None,
                           "gap: chain truncated after the last row" if count
                           else "gap: chain emptied")
    if head is not None and head.seq and not mac_matches(secret, head.sig, *_head_parts(head)):
        return ChainReport(count, False, last_id or None,
                           "head signature mismatch: rows deleted at the tail, or a head "
                           "not signed since the upgrade (the next audited action signs it)")
    return ChainReport(count, True, reanchored=tuple(repaired))


def reanchor(session: Session, keyring: KeyRing, actor: Actor, reason: str) -> AuditReanchor:
    """Accept the rows of the first break that were MACed under another audit key (a wrong
    keyring): from the first broken row to the last one that does not verify under this
    key. Signed and audited; refused when the chain verifies or breaks another way."""
    reason = reason.strip()
    if not reason:
        raise InvalidTransition("a re-anchor needs a reason")
    report = verify_chain(session, keyring)
    if report.ok:
        raise InvalidTransition("the audit chain verifies: nothing to re-anchor")
    if report.reason != "MAC mismatch":
        raise InvalidTransition(f"refused: the chain breaks by {report.reason!r}, not by rows "
                                "MACed under another key; that evidence is kept")
    secret = keyring.secret("audit")
    first = report.first_broken_seq
    prev_mac, last = None, None
    for event in session.scalars(select(AuditEvent).where(AuditEvent.seq >= first)
                                 .order_by(AuditEvent.seq)):
        if prev_mac is not None and mac_matches(secret, event.mac, *_mac_parts(prev_mac, event)):
            break  # the right key again from here
        prev_mac, last = event.mac, event
    anchor = AuditReanchor(from_seq=first, to_seq=last.seq, last_mac=last.mac,
                           reason=reason[:200], at=utcnow())
    anchor.sig = mac(secret, *_reanchor_parts(anchor))
    session.add(anchor)
    session.flush()
    record(session, keyring, actor, "audit_reanchored", object_type="audit_events",
           object_ids=[first, last.seq], purpose=reason)
    return anchor


def _describe_reanchor(anchor: AuditReanchor) -> str:
    return (f"rows seq {anchor.from_seq}-{anchor.to_seq} re-anchored on "
            f"{anchor.at:%Y-%m-%d %H:%M} UTC")


def _out_of_order(session: Session, event: AuditEvent, previous_id: int) -> bool:
    # Rows are inserted under the head lock, so ids grow with seq: the row that should
    # come next is the one with the next id. Another row here means rows were swapped.
    next_id = session.scalar(select(func.min(AuditEvent.id)).where(AuditEvent.id > previous_id))
    return next_id != event.id


def purge_before(session: Session, keyring: KeyRing, actor: Actor, cutoff: datetime) -> int:
    """Delete the rows older than ``cutoff`` (retention) after verifying the chain; the
    last deleted row becomes the signed anchor verification starts from. Returns the count.

    A broken chain is never purged: the evidence of the tampering is kept.
    """
    report = verify_chain(session, keyring)
    if not report.ok:
        raise ChainBrokenError(report)
    last = session.scalars(select(AuditEvent).where(AuditEvent.at < cutoff)
                           .order_by(AuditEvent.seq.desc()).limit(1)).first()
    if last is None:
        return 0
    head = _locked_head(session)
    deleted = session.execute(delete(AuditEvent).where(AuditEvent.seq <= last.seq)).rowcount
    head.anchor_seq, head.anchor_mac = last.seq, last.mac
    head.anchor_sig = mac(keyring.secret("audit"), *_anchor_parts(head))
    session.flush()
    record(session, keyring, actor, "audit_purged", object_type="audit_events",
           object_ids=[last.seq], purpose=f"{deleted} ligne(s) antérieure(s) au {cutoff:%Y-%m-%d}")
    return deleted


class ChainBrokenError(RuntimeError):
    """The chain does not verify: old rows are not deleted."""

    def __init__(self, report: ChainReport) -> None:
        super().__init__(f"audit chain broken at row {report.first_broken_id}: {report.reason}")
        self.report = report


def _anchor_parts(head: AuditHead) -> tuple:
    return ("icli.audit.anchor.v1", head.anchor_seq, head.anchor_mac)


def _head_parts(head: AuditHead) -> tuple:
    return ("icli.audit.head.v1", head.seq, head.mac)


def _reanchor_parts(anchor: AuditReanchor) -> tuple:
    return ("icli.audit.reanchor.v1", anchor.from_seq, anchor.to_seq, anchor.last_mac,
            anchor.reason, anchor.at.isoformat(timespec="microseconds"))


# -- rows that must outlive the caller's transaction --------------------------------
# A value was decrypted, or failed to decrypt: that happened whatever the caller does next,
# and a refused action (a DomainError after a guard read the identity) is rolled back by its
# view. Writing these rows at once on another connection would wait for the caller's own
# lock on the chain head, so they wait in the session and are written in their own short
# transaction as soon as the caller's transaction ends without committing them.
_PENDING = "icli_pending_audit"  # integrity failures: written after any ending
_UNCOMMITTED = "icli_uncommitted_audit"  # decryptions: written again after a rollback


def record_decryption(session: Session, keyring: KeyRing, actor: Actor, *, object_type: str,
                      object_ids: list[int], fields: list[str], purpose: str) -> AuditEvent:
    """The audit row of a decryption, in the caller's transaction (fail closed: it is
    flushed before anything is decrypted) and again on its own if that transaction does not
    commit."""
    event = record(session, keyring, actor, "decrypt", object_type=object_type,
                   object_ids=object_ids, fields=fields, purpose=purpose)
    _queue(session, _UNCOMMITTED, (keyring, actor, "decrypt", object_type, tuple(object_ids),
                                   tuple(fields), purpose))
    return event


def record_after(session: Session, keyring: KeyRing, actor: Actor, action: str, *,
                 object_type: str, object_ids: Iterable[int], fields: Iterable[str] = (),
                 purpose: str = "") -> None:
    """An audit row written in its own transaction once the caller's ends, however it ends:
    for an event the caller's rollback must not erase (a refusal, say)."""
    _queue(session, _PENDING, (keyring, actor, action, object_type, tuple(object_ids),
                               tuple(fields), purpose))


def integrity_failure(session: Session, keyring: KeyRing, actor: Actor, table: str,
                      row_id: int, field: str) -> None:
    """Queue an audit row for a value that failed to decrypt (ids only, never ciphertext)."""
    _queue(session, _PENDING, (keyring, actor, "integrity_failure", table, (row_id,),
                               (field,), ""))


def _queue(session: Session, key: str, row: tuple) -> None:
    if not session.in_transaction():
        session.begin()  # its end, however it ends, writes the row
    session.info.setdefault(key, []).append(row)
    if not sa_event.contains(session, "after_transaction_end", _write_pending):
        sa_event.listen(session, "after_commit", _forget_committed)
        sa_event.listen(session, "after_transaction_end", _write_pending)


def _forget_committed(session: Session) -> None:
    session.info.pop(_UNCOMMITTED, None)  # committed with the caller's transaction


def _write_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    pending = session.info.pop(_PENDING, []) + session.info.pop(_UNCOMMITTED, [])
    if not pending:
        return
    try:
        with Session(session.get_bind().engine) as isolated:
            for keyring, actor, action, table, ids, fields, purpose in pending:
                record(isolated, keyring, actor, action, object_type=table, object_ids=ids,
                       fields=fields, purpose=purpose)
            isolated.commit()
    except Exception as exc:  # the event itself is still in the log
        log.error("%d audit row(s) could not be written after the transaction ended (%s)",
                  len(pending), type(exc).__name__)


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
