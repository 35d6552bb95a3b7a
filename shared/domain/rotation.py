"""Key rotation, online and resumable (docs/security.md, rule 6): add → promote → rotate → retire.

- ``add``: a new version in the keyring file, held by every process once it reloads, not used.
- ``promote``: the new version becomes primary (new wraps, new blind indexes), refused until
  every live intake and worker process reports holding it (``shared.heartbeat``).
- ``rotate``: data chains rewrap their DEKs, field columns never read; the index chain
  recomputes the blind indexes from the decrypted identity. Batches in keyset order, each
  row updated only if it is still on the version it was read with (compare-and-swap), the
  checkpoint committed in the same transaction: kill -9 at any moment, run again, it
  resumes. Passes repeat until no row is left (a process that had not reloaded yet may
  still have wrapped a new DEK under the old version meanwhile).
- ``retire``: refused while the version is primary or any row needs it; then a verification
  pass opens every data key of the chain without it; then its material leaves the file, and
  ``wait_until_released`` waits until no live process holds it any more.

Every step is an audit event. Plain functions: the CLI, the admin page and tests call them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared import heartbeat
from shared.crypto import DATA_CHAINS, DEFAULT_INDEX_BITS, KeyRing, fingerprint, new_dek
from shared.db import utcnow
from shared.domain import audit
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError
from shared.keys import record_key_versions
from shared.models import (
    AvisRevision,
    Beneficiary,
    Decision,
    DecisionAction,
    FormalDecision,
    GeneratedDocument,
    IdentityRecord,
    KeyRotation,
    KeyVersionRecord,
    ProcessHeartbeat,
    RecordKey,
    Sheet,
    SheetEvent,
)
from shared.protected import PROTECTED_FIELDS

ROTATED_CHAINS = (*DATA_CHAINS, "index")  # chains whose rows name a version
# The audit secret MACs the whole chain of rows: a new version would orphan the old rows.
FIXED_CHAINS = ("audit",)
INDEX_PURPOSE = "rotation de la clé des index de doublons"
# Rows per checkpointed batch: large enough to amortise statements and commits, small enough
# that SQLite's write lock is held a few milliseconds (reads' p99 in bench/rotation.py).
DEFAULT_BATCH = 2000
Progress = Callable[[int, int], None]


# -- status ------------------------------------------------------------------------------
def rows_by_version(session: Session, chain: str) -> dict[int, int]:
    """How many rows each version of ``chain`` wraps (data) or indexes (index)."""
    if chain in DATA_CHAINS:
        query = (select(RecordKey.kek_version, func.count()).where(RecordKey.chain == chain)
                 .group_by(RecordKey.kek_version))
    elif chain == "index":
        query = (select(IdentityRecord.index_version, func.count())
                 .group_by(IdentityRecord.index_version))
    else:
        return {}
    return {version: count for version, count in session.execute(query)}


def version_state(chain: str, version: int, primary: int, retired: bool) -> str:
    if retired:
        return "retired"
    if version == primary:
        return "primary"
    return "active" if version > primary else "retiring"


def status(session: Session, keyring: KeyRing) -> dict[str, Any]:
    """The stable JSON interface of ``icli keys status --json`` (never a key)."""
    live = heartbeat.live_processes(session)
    records = {(r.chain, r.version): r for r in session.scalars(select(KeyVersionRecord))}
    chains: dict[str, Any] = {}
    for chain in keyring.chains:
        primary = keyring.primary_version(chain)
        rows = rows_by_version(session, chain)
        held = {v.version: v for v in keyring.versions(chain)}
        numbers = sorted(set(held) | {v for (c, v) in records if c == chain})
        versions = []
        for number in numbers:
            record = records.get((chain, number))
            key = held.get(number)
            versions.append({
                "version": number,
                "state": version_state(chain, number, primary, key is None),
                "rows": rows.get(number, 0),
                "fingerprint": fingerprint(key.key) if key else (record.fingerprint
                                                                  if record else ""),
                "created_at": key.created_at if key else "",
                "held_by": [p.id for p in live if heartbeat.holds(p, chain, number)],
            })
        chains[chain] = {"primary": primary, "versions": versions}
    processes = [{"id": p.id, "kind": p.kind, "host": p.host, "pid": p.pid,
                  "seen_at": p.seen_at.isoformat(timespec="seconds") + "Z",
                  "held": json.loads(p.held)} for p in live]
    return {"chains": chains, "processes": processes}


# -- add, promote, retire ----------------------------------------------------------------
def _check_chain(keyring: KeyRing, chain: str) -> None:
    if chain not in keyring.chains:
        raise InvalidInputError(f"unknown chain {chain!r} (known: {', '.join(keyring.chains)})")


def add(session: Session, keyring_path: Path, keyring: KeyRing, chain: str,
        actor: audit.Actor) -> int:
    _check_chain(keyring, chain)
    if chain in FIXED_CHAINS:
        raise InvalidTransitionError(f"the {chain} secret is not rotated online (it MACs the "
                                     "existing audit rows)")
    version = KeyRing.add_version(keyring_path, chain)
    keyring.refresh()
    record_key_versions(session, keyring)
    audit.record(session, keyring, actor, "key_added", object_type="key_versions",
                 object_ids=[f"{chain}:{version}"])
    return version


def _named(process: ProcessHeartbeat) -> str:
    return f"{process.kind} pid {process.pid} on {process.host}"


def promote_blockers(session: Session, chain: str, version: int) -> list[str]:
    """Live processes that load ``chain`` but do not hold ``version`` yet."""
    return [_named(p) for p in heartbeat.live_processes(session)
            if heartbeat.holds(p, chain, version) is False]


def retired_holders(session: Session, chain: str, version: int) -> list[str]:
    """Live processes that still hold ``version`` (they have not reloaded the keyring)."""
    return [_named(p) for p in heartbeat.live_processes(session)
            if heartbeat.holds(p, chain, version)]


def wait_until_released(session: Session, chain: str, version: int, timeout: float,
                        poll: float = 0.5) -> list[str]:
    """After ``retire``: wait until no live process holds ``version`` any more (each one
    reloads the keyring before its next request or job and reports it at once, an idle one
    stops counting as live after ``heartbeat.LIVE_FOR``); returns those still holding it
    when ``timeout`` seconds have passed, [] once it is gone everywhere."""
    deadline = time.monotonic() + timeout
    while True:
        session.rollback()  # a fresh snapshot of the heartbeats
        holders = retired_holders(session, chain, version)
        if not holders or time.monotonic() >= deadline:
            return holders
        time.sleep(poll)


def promote(session: Session, keyring_path: Path, keyring: KeyRing, chain: str, version: int,
            actor: audit.Actor) -> None:
    _check_chain(keyring, chain)
    keyring.refresh()
    if not keyring.holds(chain, version):
        raise InvalidInputError(f"{chain} v{version} is not in the keyring")
    if chain in FIXED_CHAINS:
        raise InvalidTransitionError(f"the {chain} secret is not rotated online")
    if keyring.primary_version(chain) == version:
        raise InvalidTransitionError(f"{chain} v{version} is already primary")
    blockers = promote_blockers(session, chain, version)
    if blockers:
        raise InvalidTransitionError(f"refused: {len(blockers)} live process(es) do not hold "
                                     f"{chain} v{version} yet: " + "; ".join(blockers))
    KeyRing.set_primary(keyring_path, chain, version)
    keyring.refresh()
    _set_state(session, chain, version, "primary")
    audit.record(session, keyring, actor, "key_promoted", object_type="key_versions",
                 object_ids=[f"{chain}:{version}"])


def _set_state(session: Session, chain: str, version: int, state: str) -> None:
    if state == "primary":  # the previous primary is now retiring
        session.execute(update(KeyVersionRecord).where(
            KeyVersionRecord.chain == chain, KeyVersionRecord.state == "primary")
            .values(state="retiring"))
    session.execute(update(KeyVersionRecord).where(
        KeyVersionRecord.chain == chain, KeyVersionRecord.version == version)
        .values(state=state))


def retire(session: Session, keyring_path: Path, keyring: KeyRing, chain: str, version: int,
           actor: audit.Actor) -> int:
    """Remove ``version`` once nothing needs it; returns the number of keys verified."""
    _check_chain(keyring, chain)
    keyring.refresh()
    if keyring.primary_version(chain) == version:
        raise InvalidTransitionError(f"refused: {chain} v{version} is primary")
    if not keyring.holds(chain, version):
        raise InvalidInputError(f"{chain} v{version} is not in the keyring")
    in_use = rows_by_version(session, chain).get(version, 0)
    if in_use:
        raise InvalidTransitionError(f"refused: {in_use} row(s) still need {chain} v{version}; "
                                     f"run `icli keys rotate --chain {chain}` first")
    verified = verify_chain_keys(session, keyring, chain, without=version)
    KeyRing.remove_version(keyring_path, chain, version)
    keyring.refresh()
    _set_state(session, chain, version, "retired")
    audit.record(session, keyring, actor, "key_retired", object_type="key_versions",
                 object_ids=[f"{chain}:{version}"], purpose=f"{verified} clés vérifiées")
    return verified


def verify_chain_keys(session: Session, keyring: KeyRing, chain: str, *, without: int,
                      batch: int = 5000) -> int:
    """Unwrap every data key of ``chain`` (none may need ``without``); raises on failure."""
    if chain not in DATA_CHAINS:
        return 0
    count, after = 0, ("", 0)
    while True:
        rows = session.execute(
            select(RecordKey.record_uuid, RecordKey.dek_version, RecordKey.kek_version,
                   RecordKey.wrapped_dek)
            .where(RecordKey.chain == chain,
                   or_(RecordKey.record_uuid > after[0],
                       and_(RecordKey.record_uuid == after[0],
                            RecordKey.dek_version > after[1])))
            .order_by(RecordKey.record_uuid, RecordKey.dek_version).limit(batch)).all()
        if not rows:
            return count
        for uuid, dek_version, kek_version, wrapped in rows:
            if kek_version == without:
                raise InvalidTransitionError(f"refused: a key still needs {chain} v{without}")
            keyring.unwrap(chain, uuid, dek_version, kek_version, wrapped)
            count += 1
        after = (rows[-1][0], rows[-1][1])


# -- rotate ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RotationResult:
    chain: str
    target_version: int
    rewrapped: int
    passes: int
    # Ids of the identity records an index rotation could not decrypt: they stay on their old
    # version (``retire`` refuses it) until repaired or purged.
    undecryptable: tuple[int, ...] = ()


def rotate(sessions: sessionmaker[Session], keyring: KeyRing, chain: str, actor: audit.Actor,
           *, batch: int = DEFAULT_BATCH, pause: float = 0.0,
           progress: Progress | None = None,
           index_bits: int = DEFAULT_INDEX_BITS) -> RotationResult:
    """Move every row of ``chain`` to its primary version; resumable, beside live traffic
    (``pause`` seconds between batches leave room to a busy database). The index chain also
    brings every record to ``index_bits`` (``settings.index_bits``); a record it cannot
    decrypt is skipped and listed in the result, the others go on."""
    _check_chain(keyring, chain)
    if chain not in ROTATED_CHAINS:
        raise InvalidInputError(f"{chain}: nothing to rotate (no row names a {chain} version)")
    keyring.refresh()
    target = keyring.primary_version(chain)
    undecryptable: set[int] = set()
    step = _rewrap_batch if chain in DATA_CHAINS else partial(
        _reindex_batch, bits=index_bits, skipped=undecryptable)

    def behind(session: Session) -> int:
        return _behind(session, chain, target, index_bits, undecryptable)

    with sessions() as session:
        checkpoint = _checkpoint(session, keyring, chain, target, behind(session), actor)
        session.commit()
        rotation_id = checkpoint.id
    passes, moved = 0, 0
    while True:
        passes += 1
        pass_moved = 0
        while True:
            with sessions() as session:
                checkpoint = session.get(KeyRotation, rotation_id)
                if keyring.primary_version(chain) != target:
                    raise InvalidTransitionError(f"{chain} primary changed during the rotation")
                count, position = step(session, keyring, chain, target, checkpoint.position,
                                       batch, actor)
                if position is None:  # end of this pass
                    checkpoint.position = ""
                    session.commit()
                    break
                checkpoint.done += count
                checkpoint.position, checkpoint.updated_at = position, utcnow()
                session.commit()  # the batch and its checkpoint together
                pass_moved += count
                if progress:
                    progress(checkpoint.done, checkpoint.total)
                if pause:
                    time.sleep(pause)
        moved += pass_moved
        with sessions() as session:
            if behind(session):  # written meanwhile by a process on the old version
                continue
            if undecryptable:
                audit.record(session, keyring, actor, "key_rotation_incomplete",
                             object_type="identity_records", object_ids=sorted(undecryptable),
                             purpose=f"{len(undecryptable)} indéchiffrables")
                session.commit()
                return RotationResult(chain, target, moved, passes, tuple(sorted(undecryptable)))
            checkpoint = session.get(KeyRotation, rotation_id)
            checkpoint.status, checkpoint.finished_at = "done", utcnow()
            audit.record(session, keyring, actor, "key_rotation_done",
                         object_type="key_versions", object_ids=[f"{chain}:{target}"],
                         purpose=f"{checkpoint.done} lignes")
            session.commit()
            return RotationResult(chain, target, moved, passes)


def _behind(session: Session, chain: str, target: int, index_bits: int,
            skipped: set[int]) -> int:
    """Rows still to move: data keys off ``target``; identity records off ``target`` or
    ``index_bits``, besides those known not to decrypt."""
    if chain in DATA_CHAINS:
        return sum(n for v, n in rows_by_version(session, chain).items() if v != target)
    return session.scalar(select(func.count()).select_from(IdentityRecord).where(
        _off_index(target, index_bits), IdentityRecord.id.not_in(skipped))) or 0


def _off_index(target: int, index_bits: int):
    return or_(IdentityRecord.index_version != target, IdentityRecord.index_bits != index_bits)


def _checkpoint(session: Session, keyring: KeyRing, chain: str, target: int, remaining: int,
                actor: audit.Actor) -> KeyRotation:
    """The running rotation of ``chain`` to ``target``, or a new one (audited)."""
    checkpoint = session.scalars(select(KeyRotation).where(
        KeyRotation.chain == chain, KeyRotation.target_version == target,
        KeyRotation.status == "running")).first()
    if checkpoint is None:
        checkpoint = KeyRotation(chain=chain, target_version=target, total=remaining, done=0,
                                 position="")
        session.add(checkpoint)
        audit.record(session, keyring, actor, "key_rotation_started",
                     object_type="key_versions", object_ids=[f"{chain}:{target}"],
                     purpose=f"{remaining} lignes")
    else:  # resumed: the total becomes what was done plus what is left
        checkpoint.total = checkpoint.done + remaining
    session.flush()
    return checkpoint


# The rotation's two statements run on the driver's cursor, each prepared once per batch:
# SQLAlchemy's per-row work (statements, Row objects) would cost as much as the crypto.
_SELECT_KEYS = ("SELECT record_uuid, dek_version, wrapped_dek FROM record_keys "
                "WHERE chain = {m} AND kek_version = {m} "
                "AND (record_uuid, dek_version) > ({m}, {m}) "
                "ORDER BY record_uuid, dek_version LIMIT {m}")
_UPDATE_KEY = ("UPDATE record_keys SET kek_version = {m}, wrapped_dek = {m} "
               "WHERE record_uuid = {m} AND chain = {m} AND dek_version = {m} "
               "AND kek_version = {m}")


def _rewrap_batch(session: Session, keyring: KeyRing, chain: str, target: int, position: str,
                  batch: int, actor: audit.Actor) -> tuple[int, str | None]:
    """Rewrap up to ``batch`` DEKs after ``position`` ("old version/uuid/dek version": one old
    version at a time, in index order); returns (rewrapped, new position), position None when
    the pass is over. Field ciphertexts are never read."""
    old, after = 0, ("", 0)
    if position:
        version, uuid, dek_version = position.split("/")
        old, after = int(version), (uuid, int(dek_version))
    mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
    cursor = session.connection().connection.cursor()
    try:
        while True:
            if not old:  # the next version still in use (rows of a later one wait their turn)
                old = session.scalar(select(func.min(RecordKey.kek_version)).where(
                    RecordKey.chain == chain, RecordKey.kek_version != target)) or 0
                if not old:
                    return 0, None
            cursor.execute(_SELECT_KEYS.format(m=mark), (chain, old, *after, batch))
            rows = cursor.fetchall()
            if rows:
                break
            if after == ("", 0):  # nothing at all on that version any more
                old = 0
                continue
            return 0, None  # this version walked to its end: the pass is over
        new_version, rewrapped = keyring.rewrap_many(chain, old, rows)
        cursor.executemany(_UPDATE_KEY.format(m=mark), [
            (new_version, wrapped, uuid, chain, dek_version, old)
            for (uuid, dek_version, _old), wrapped in zip(rows, rewrapped, strict=True)])
        moved = cursor.rowcount if cursor.rowcount >= 0 else len(rows)
    finally:
        cursor.close()
    uuid, dek_version, _wrapped = rows[-1]
    return moved, f"{old}/{uuid}/{dek_version}"


def _reindex_batch(session: Session, keyring: KeyRing, chain: str, target: int, position: str,
                   batch: int, actor: audit.Actor, *, bits: int,
                   skipped: set[int]) -> tuple[int, str | None]:
    """Recompute the blind indexes of up to ``batch`` identity records under ``target``,
    ``bits`` wide (the identity is decrypted for it, audited); CAS on the record's index
    version and width. A record that does not decrypt joins ``skipped`` (its integrity
    failure audited) and is not read again by the next passes."""
    from shared.domain.beneficiaries import Identity, indexes

    after = int(position or 0)
    records = list(session.scalars(
        select(IdentityRecord).where(_off_index(target, bits),
                                     IdentityRecord.id > after,
                                     IdentityRecord.id.not_in(skipped))
        .order_by(IdentityRecord.id).limit(batch)))
    if not records:
        return 0, None
    vault = Vault(session, keyring, actor)
    fields = list(Identity.__dataclass_fields__)
    opened = vault.open_each(records, fields, purpose=INDEX_PURPOSE)
    moved = 0
    for record, values in zip(records, opened, strict=True):
        if values is None:
            skipped.add(record.id)
            continue
        identity = Identity(**{k: (v.reveal() if v is not None else "")
                               for k, v in values.items()})
        result = session.execute(
            update(IdentityRecord)
            .where(IdentityRecord.id == record.id,
                   IdentityRecord.index_version == record.index_version,
                   IdentityRecord.index_bits == record.index_bits)
            .values(index_version=target, index_bits=bits,
                    **indexes(keyring, identity, target, bits))
            .execution_options(synchronize_session=False))
        moved += result.rowcount
    return moved, str(records[-1].id)


# -- deep re-encryption of one person (incidents) --------------------------------------------
DEEP_PURPOSE = "rechiffrement complet (incident)"


def owned_records(session: Session, beneficiary: Beneficiary) -> list[Any]:
    """Every protected row encrypted under this person's data keys."""
    sheets = list(session.scalars(select(Sheet).where(Sheet.beneficiary_id == beneficiary.id)))
    sheet_ids = [s.id for s in sheets]
    decisions = list(session.scalars(select(Decision).where(Decision.sheet_id.in_(sheet_ids))))
    return [
        *session.scalars(select(IdentityRecord)
                         .where(IdentityRecord.beneficiary_id == beneficiary.id)),
        *sheets,
        *session.scalars(select(SheetEvent).where(SheetEvent.sheet_id.in_(sheet_ids))),
        *decisions,
        *session.scalars(select(DecisionAction).where(
            DecisionAction.decision_id.in_([d.id for d in decisions]))),
        *session.scalars(select(FormalDecision).where(
            FormalDecision.decision_id.in_([d.id for d in decisions]))),
        *session.scalars(select(AvisRevision).where(
            AvisRevision.decision_id.in_([d.id for d in decisions]))),
        *session.scalars(select(GeneratedDocument)
                         .where(GeneratedDocument.sheet_id.in_(sheet_ids))),
    ]


def deep_reencrypt(session: Session, keyring: KeyRing, beneficiary: Beneficiary,
                   actor: audit.Actor) -> int:
    """Re-encrypt every protected value of one person under new data keys (a new DEK version
    per chain, wrapped by the primary KEK), then delete the old data keys: ciphertexts copied
    before the incident no longer open. One transaction; returns the values re-encrypted."""
    records = owned_records(session, beneficiary)
    reader = Vault(session, keyring, actor)
    plain: list[tuple[Any, str, Any]] = []
    for record in records:
        fields = [f for f in PROTECTED_FIELDS[record.__tablename__]
                  if getattr(record, f) is not None]
        blobs = [f for f in fields if isinstance(getattr(record, f), bytes)]
        texts = [f for f in fields if f not in blobs]
        opened = reader.open_many([record], texts, purpose=DEEP_PURPOSE)[0] if texts else {}
        plain += [(record, f, opened[f].reveal()) for f in texts]
        plain += [(record, f, reader.open_blob(record, f)) for f in blobs]
    owner = beneficiary.uuid
    old = list(session.scalars(select(RecordKey).where(RecordKey.record_uuid == owner)))
    for chain in {row.chain for row in old}:
        version = max(row.dek_version for row in old if row.chain == chain) + 1
        kek_version, wrapped = keyring.wrap(chain, owner, version, new_dek())
        session.add(RecordKey(record_uuid=owner, chain=chain, dek_version=version,
                              kek_version=kek_version, wrapped_dek=wrapped))
    session.flush()
    writer = Vault(session, keyring, actor)  # takes each chain's newest data key
    for record, field, value in plain:
        if isinstance(value, bytes):
            writer.seal_blob(record, field, value)
        else:
            writer.seal(record, field, value)
    for row in old:
        session.delete(row)
    session.flush()
    audit.record(session, keyring, actor, "key_deep_reencrypt", object_type="beneficiaries",
                 object_ids=[beneficiary.id], purpose=f"{len(plain)} valeurs")
    return len(plain)
