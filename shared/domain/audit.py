"""Audit trail: rows MACed one by one by their writers, then chained by a sealer
(docs/security.md, rule 11 and "Audit: writers and the sealer").

A writer inserts its row in its own transaction with ``row_mac``, a MAC of the row's id and
content under the audit secret, and reads or updates nothing shared: audited requests never
wait on each other. The sealer (``seal``, run by the worker's maintenance step, one at a time
under the ``audit_head`` row lock) then gives the committed rows their place in the chain, in
id order: ``seq`` and ``mac``, a MAC over the previous row's ``mac``, the row's seq, id and
``row_mac``; the head (seq, mac) is itself MACed. Editing, deleting or reordering a sealed row
breaks the chain; deleting the sealed tail is caught by the head, and after a restored older
head only against a checkpoint kept outside the database (``shared.audit_checkpoint``). An
unsealed row is checked by its own MAC; a gap in ids among unsealed rows older than
``UNSEALED_LIMIT`` is reported. Rows written before migration 0020 carry a v1 MAC over the
previous MAC and their content, and verify as they did.

Ids are given out before commit: on PostgreSQL a row with a smaller id can commit after a
larger one. The sealer never passes a gap in ids while the row after it is younger than
``SEAL_GRACE``; a row whose transaction outlasted that (a "late" row) is sealed next time,
after rows with larger ids: the chain's order is ``seq``, not ``id``.

Callers that decrypt must record first: if the row cannot be written, they stop. Rows once
MACed under a wrong audit key can only be accepted as they are by an administrator's signed,
audited re-anchor (``reanchor``); verification names it for good.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from shared.crypto import KeyRing, mac, mac_matches
from shared.db import utcnow
from shared.errors import InvalidTransitionError
from shared.models import AuditEvent, AuditHead, AuditReanchor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who acts: a user id, or a process label such as "cli" or "worker"."""

    user_id: int | None
    label: str = "user"


CLI = Actor(None, "cli")
WORKER = Actor(None, "worker")


# A gap in ids followed by a row younger than this may still be filled by a transaction that
# took its id earlier and has not committed yet: the sealer stops before it. Later, the gap
# is a rollback (or a late commit, sealed after larger ids).
SEAL_GRACE = timedelta(seconds=5)
# Rows older than this should have been sealed (the worker seals at each maintenance step,
# every 15 s or after the job it is running): below it, a gap in ids among unsealed rows is
# a row deleted before the sealer saw it.
UNSEALED_LIMIT = timedelta(minutes=2)


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
    """Insert one audit row with its own MAC and flush it; raises if it cannot be written.
    Nothing shared is read or locked: the sealer chains it once it is committed."""
    secret = keyring.secret("audit")
    event = AuditEvent(
        at=utcnow(),
        actor_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        object_type=object_type,
        object_ids=",".join(str(i) for i in object_ids),
        fields=",".join(fields),
        purpose=purpose[:200],
    )
    session.add(event)
    session.flush()  # the id, which the row's MAC covers (no one can renumber it unseen)
    event.row_mac = _row_mac(secret, event)
    session.flush()
    return event


def _row_mac(secret: bytes, event: AuditEvent) -> str:
    return mac(secret, *_row_parts(event))


def _locked_head(session: Session) -> AuditHead:
    # UPDATE first: it takes the lock before we read, so two sealers cannot fork the chain.
    result = session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))
    if result.rowcount == 0:
        session.add(AuditHead(id=1, seq=0, mac=""))
        session.flush()
    return session.execute(
        select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    ).scalar_one()


def seal(session: Session, keyring: KeyRing, *, now: datetime | None = None,
         grace: timedelta = SEAL_GRACE, batch: int = 2000) -> int:
    """Chain the committed rows not sealed yet, in id order, up to the first gap in ids that
    a transaction still open may fill (the row after it is younger than ``grace``); move
    the signed head. Flushes; the caller commits. Returns how many rows were sealed."""
    secret = keyring.secret("audit")
    head = _locked_head(session)  # a second sealer waits here, then finds nothing left
    cut = (now or utcnow()) - grace
    # Nothing sealed yet (or all of it purged): the first unsealed row starts the run.
    passed = _sealed_through(session) or (session.scalar(
        select(func.min(AuditEvent.id)).where(AuditEvent.seq.is_(None))) or 1) - 1
    sealed = 0
    while True:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.seq.is_(None))
                               .order_by(AuditEvent.id)
                               .limit(batch)).all()
        stop = False
        for event in rows:
            if event.id > passed + 1 and event.at > cut:
                stop = True  # ids before it may still commit
                break
            head.seq += 1
            event.seq = head.seq
            event.mac = mac(secret, *_chain_parts(head.mac, event))
            head.mac = event.mac
            passed = max(passed, event.id)  # a late row (id below) leaves it where it is
            sealed += 1
        session.flush()
        if stop or len(rows) < batch:
            break
    if sealed:
        head.sig = mac(secret, *_head_parts(head))
        session.flush()
    return sealed


def _sealed_through(session: Session) -> int:
    """The largest id the sealer has passed: ids below it that are missing were gaps when it
    passed (rollbacks), or rows committed late, sealed after it."""
    return session.scalar(select(func.max(AuditEvent.id))
                          .where(AuditEvent.seq.is_not(None))) or 0


@dataclass(frozen=True)
class ChainReport:
    rows: int
    ok: bool
    first_broken_id: int | None = None  # None when the break is after the last row
    reason: str = ""
    first_broken_at: datetime | None = None
    first_broken_seq: int | None = None
    reanchored: tuple[str, ...] = ()  # breaks repaired by an administrator's re-anchor
    unsealed: int = 0  # rows checked by their own MAC only, not chained yet
    stale_unsealed: int = 0  # of which older than UNSEALED_LIMIT: is a worker sealing?


def verify_chain(session: Session, keyring: KeyRing, batch: int = 5000, *,
                 now: datetime | None = None,
                 unsealed_limit: timedelta = UNSEALED_LIMIT) -> ChainReport:
    """Walk the sealed chain in sequence order from the retention anchor; name the first row
    that was edited (MAC mismatch), follows deleted rows (gap) or was moved (order), or a head
    moved back over deleted rows; rows covered by a signed re-anchor are taken as pinned.
    Then check each unsealed row's own MAC, and that no id is missing among the unsealed
    rows older than ``unsealed_limit`` (the sealer would have seen the gap)."""
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
    # The sealer may commit while we walk: rows sealed after the head was read are reached by
    # reading the head again (it is committed with them), never reported as a truncation.
    for _ in range(5):
        while True:
            rows = session.scalars(
                select(AuditEvent).where(AuditEvent.seq >= expected_seq)
                .order_by(AuditEvent.seq).limit(batch)
                .execution_options(populate_existing=True)
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
                elif not _verifies(secret, prev_mac, event):
                    reason = ("order: row moved out of its place in the chain"
                              if _out_of_order(session, secret, event, last_id) else "MAC mismatch")
                    return ChainReport(count, False, event.id, reason, event.at, event.seq)
                prev_mac, expected_seq, last_id = event.mac, expected_seq + 1, event.id
        if (head is None and not count) or (
                head is not None and (head.seq, head.mac) == (expected_seq - 1, prev_mac)):
            break
        seen = None if head is None else (head.seq, head.mac)
        head = session.get(AuditHead, 1, populate_existing=True)
        if seen == (None if head is None else (head.seq, head.mac)):
            break  # no seal in between: the comparison below reports the mismatch
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
                           "not signed since the upgrade (the next seal signs it)")
    return _verify_unsealed(session, secret, count, tuple(repaired),
                            (now or utcnow()) - unsealed_limit, batch)


def _verify_unsealed(session: Session, secret: bytes, count: int, repaired: tuple[str, ...],
                     stale_before: datetime, batch: int) -> ChainReport:
    """Each unsealed row by its own MAC; a gap in ids among those older than
    ``stale_before``, above the last id the sealer passed, is a deleted row."""
    passed = _sealed_through(session)
    expected_id = passed + 1 if passed else None  # nothing sealed: no start to count from
    unsealed = stale = last_id = 0
    while rows := session.scalars(select(AuditEvent).where(AuditEvent.seq.is_(None))
                                  .where(AuditEvent.id > last_id)
                                  .order_by(AuditEvent.id).limit(batch)
                                  .execution_options(populate_existing=True)).all():
        for event in rows:
            count += 1
            unsealed += 1
            if event.row_mac is None or not mac_matches(secret, event.row_mac,
                                                        *_row_parts(event)):
                return ChainReport(count, False, event.id, "MAC mismatch (row not sealed yet)",
                                   event.at)
            if event.at < stale_before:
                stale += 1
                if expected_id is not None and event.id > expected_id:
                    return ChainReport(count, False, event.id,
                                       f"gap: unsealed row(s) missing before id {event.id} "
                                       "(deleted, or rolled back while no sealer ran)", event.at)
            if expected_id is not None and event.id >= expected_id:
                expected_id = event.id + 1
            last_id = event.id
    return ChainReport(count, True, reanchored=repaired, unsealed=unsealed,
                       stale_unsealed=stale)


def reanchor(session: Session, keyring: KeyRing, actor: Actor, reason: str) -> AuditReanchor:
    """Accept the rows of the first break that were MACed under another audit key (a wrong
    keyring): from the first broken row to the last one that does not verify under this
    key. Signed and audited; refused when the chain verifies or breaks another way."""
    reason = reason.strip()
    if not reason:
        raise InvalidTransitionError("a re-anchor needs a reason")
    report = verify_chain(session, keyring)
    if report.ok:
        raise InvalidTransitionError("the audit chain verifies: nothing to re-anchor")
    if report.reason != "MAC mismatch":
        raise InvalidTransitionError(f"refused: the chain breaks by {report.reason!r}, not by rows "
                                     "MACed under another key; that evidence is kept")
    secret = keyring.secret("audit")
    first = report.first_broken_seq
    prev_mac, last = None, None
    for event in session.scalars(select(AuditEvent).where(AuditEvent.seq >= first)
                                 .order_by(AuditEvent.seq)):
        if prev_mac is not None and _verifies(secret, prev_mac, event):
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


def _verifies(secret: bytes, prev_mac: str, event: AuditEvent) -> bool:
    """The sealed row's place in the chain, and (v2) its own MAC."""
    if event.row_mac is None:  # written before migration 0020: one MAC over both
        return mac_matches(secret, event.mac or "", *_v1_parts(prev_mac, event))
    return (mac_matches(secret, event.row_mac, *_row_parts(event))
            and mac_matches(secret, event.mac or "", *_chain_parts(prev_mac, event)))


def _out_of_order(session: Session, secret: bytes, event: AuditEvent, previous_id: int) -> bool:
    """A row whose own content verifies but not its chain link was moved: v2 rows carry a
    row MAC, v1 rows tell by ids (they were inserted under the head lock, so ids grew with
    seq: the row that should come next is the one with the next id)."""
    if event.row_mac is not None:
        return mac_matches(secret, event.row_mac, *_row_parts(event))
    next_id = session.scalar(select(func.min(AuditEvent.id)).where(AuditEvent.id > previous_id))
    return next_id != event.id


def purge_before(session: Session, keyring: KeyRing, actor: Actor, cutoff: datetime) -> int:
    """Seal the committed rows, verify the chain, then delete the sealed rows older than
    ``cutoff`` (retention); the last deleted row becomes the signed anchor verification
    starts from. Returns the count. Rows not sealed yet are kept until a later run.

    A broken chain is never purged: the evidence of the tampering is kept.
    """
    seal(session, keyring)
    report = verify_chain(session, keyring)
    if not report.ok:
        raise ChainBrokenError(report)
    last = session.scalars(select(AuditEvent).where(AuditEvent.at < cutoff)
                           .where(AuditEvent.seq.is_not(None))  # unsealed rows wait
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
# view. They wait in the session and are written in their own short transaction as soon as
# the caller's transaction ends without committing them (on SQLite, another connection could
# not write while the caller's transaction holds the write lock).
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


def _row_parts(event: AuditEvent) -> tuple:
    return ("icli.audit.row.v2", event.id, *_content_parts(event))


def _chain_parts(prev_mac: str, event: AuditEvent) -> tuple:
    return ("icli.audit.chain.v2", prev_mac, event.seq, event.id, event.row_mac)


def _v1_parts(prev_mac: str, event: AuditEvent) -> tuple:
    """Rows written before migration 0020: one MAC over the previous MAC and the content."""
    return ("icli.audit.v1", prev_mac, event.seq, *_content_parts(event))


def _content_parts(event: AuditEvent) -> tuple:
    """What a row says, in the order both MAC versions cover it."""
    return (
        event.at.isoformat(timespec="microseconds"),
        event.actor_id if event.actor_id is not None else "",
        event.actor_label,
        event.action,
        event.object_type,
        event.object_ids,
        event.fields,
        event.purpose,
    )
