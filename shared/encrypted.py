"""Sealing and opening protected columns: the only ORM code that calls the crypto module.

A Vault serves one unit of work (a request, a job, a CLI command). It finds or creates the
record owner's data keys, binds every ciphertext to its table, row and field, and writes
the audit row *before* decrypting identifying or sensitive fields (fail closed).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.crypto import (
    CryptoError,
    IntegrityError,
    KeyRing,
    Secret,
    new_dek,
    open_bytes,
    open_field,
    seal_bytes,
    seal_field,
)
from shared.domain import audit
from shared.models import RecordKey
from shared.protected import ProtectedField, protected_field

log = logging.getLogger(__name__)


class Vault:
    def __init__(self, session: Session, keyring: KeyRing, actor: audit.Actor) -> None:
        self.session = session
        self.keyring = keyring
        self.actor = actor
        self._deks: dict[tuple[str, str], tuple[int, bytes]] = {}
        self._key_rows: dict[str, dict[str, RecordKey]] = {}

    def __repr__(self) -> str:
        return f"Vault(actor={self.actor!r})"

    # -- keys ----------------------------------------------------------------
    def _dek(self, owner_uuid: str, chain: str, *, create: bool) -> tuple[int, bytes]:
        cached = self._deks.get((owner_uuid, chain))
        if cached:
            return cached
        row = self._latest_keys(owner_uuid).get(chain)
        if row is None:
            if not create:
                raise IntegrityError(f"no {chain} data key for this record")
            dek = new_dek()
            kek_version, wrapped = self.keyring.wrap(chain, owner_uuid, 1, dek)
            self.session.add(RecordKey(record_uuid=owner_uuid, chain=chain, dek_version=1,
                                       kek_version=kek_version, wrapped_dek=wrapped))
            entry = (1, dek)
        else:
            dek = self.keyring.unwrap(chain, owner_uuid, row.dek_version, row.kek_version,
                                      row.wrapped_dek)
            entry = (row.dek_version, dek)
        self._deks[(owner_uuid, chain)] = entry
        return entry

    def _latest_keys(self, owner_uuid: str) -> dict[str, RecordKey]:
        """The record's latest wrapped key of every chain, with one query: a sheet's page
        opens its contents and its person's identity, two chains of one owner. Each is
        unwrapped only when used (a key that does not unwrap fails only the field that
        needs it)."""
        rows = self._key_rows.get(owner_uuid)
        if rows is None:
            rows = self._key_rows[owner_uuid] = {}
            for row in self.session.scalars(select(RecordKey)
                                            .where(RecordKey.record_uuid == owner_uuid)
                                            .order_by(RecordKey.dek_version)):
                rows[row.chain] = row  # the latest version wins
        return rows

    def _prefetch(self, owner_uuids: set[str], chain: str) -> None:
        """Unwrap the data keys of many records with one query (a dossier's sheets)."""
        missing = [u for u in owner_uuids if (u, chain) not in self._deks]
        if len(missing) < 2:
            return
        for row in self.session.scalars(
                select(RecordKey).where(RecordKey.record_uuid.in_(missing),
                                        RecordKey.chain == chain)
                .order_by(RecordKey.dek_version)):
            dek = self.keyring.unwrap(chain, row.record_uuid, row.dek_version, row.kek_version,
                                      row.wrapped_dek)
            self._deks[(row.record_uuid, chain)] = (row.dek_version, dek)  # the latest wins

    # -- writing -------------------------------------------------------------
    def seal(self, obj: Any, field: str, value: str | None) -> None:
        """Encrypt ``value`` into the protected column ``field`` of ``obj`` (None stays None)."""
        spec = protected_field(obj.__tablename__, field)
        if value is None:
            setattr(obj, field, None)
            return
        version, dek = self._dek(obj.key_owner_uuid, spec.chain, create=True)
        setattr(obj, field, seal_field(dek, table=spec.table, record_uuid=obj.uuid,
                                       field=field, dek_version=version, value=value))

    def seal_blob(self, obj: Any, field: str, data: bytes) -> None:
        spec = protected_field(obj.__tablename__, field)
        version, dek = self._dek(obj.key_owner_uuid, spec.chain, create=True)
        setattr(obj, field, seal_bytes(dek, table=spec.table, record_uuid=obj.uuid,
                                       field=field, dek_version=version, data=data))

    # -- reading -------------------------------------------------------------
    def open_many(
        self, objs: Sequence[Any], fields: Iterable[str], *, purpose: str = ""
    ) -> list[dict[str, Secret | None]]:
        """Decrypt ``fields`` of every object; audited first when a field requires it."""
        specs = self._audited_specs(objs, fields, purpose)
        for chain in {s.chain for s in specs}:
            self._prefetch({o.key_owner_uuid for o in objs}, chain)
        return [{s.name: self._open_one(obj, s) for s in specs} for obj in objs]

    def open_each(
        self, objs: Sequence[Any], fields: Iterable[str], *, purpose: str = ""
    ) -> list[dict[str, Secret | None] | None]:
        """Like ``open_many``, but an object whose values do not decrypt gives None (its
        integrity failure audited) instead of stopping the others: a batch job goes on."""
        specs = self._audited_specs(objs, fields, purpose)
        for chain in {s.chain for s in specs}:
            with contextlib.suppress(CryptoError):  # a bad key fails again, per object below
                self._prefetch({o.key_owner_uuid for o in objs}, chain)
        opened: list[dict[str, Secret | None] | None] = []
        for obj in objs:
            try:
                opened.append({s.name: self._open_one(obj, s) for s in specs})
            except CryptoError:
                opened.append(None)
        return opened

    def _audited_specs(self, objs: Sequence[Any], fields: Iterable[str],
                       purpose: str) -> list[ProtectedField]:
        """The fields' specs, after the audit row of their decryption when one is required."""
        if not objs:
            return []
        table = objs[0].__tablename__
        specs = [protected_field(table, f) for f in fields]
        audited = [s.name for s in specs if s.audited]
        if audited:
            if not purpose:
                raise ValueError("decrypting identifying or sensitive data needs a purpose")
            audit.record_decryption(self.session, self.keyring, self.actor,
                                    object_type=table, object_ids=[o.id for o in objs],
                                    fields=audited, purpose=purpose)
        return specs

    def open(self, obj: Any, field: str, *, purpose: str = "") -> Secret | None:
        return self.open_many([obj], [field], purpose=purpose)[0][field]

    def open_blob(self, obj: Any, field: str) -> bytes:
        spec = protected_field(obj.__tablename__, field)
        try:
            version, dek = self._dek(obj.key_owner_uuid, spec.chain, create=False)
            return open_bytes(dek, table=spec.table, record_uuid=obj.uuid, field=field,
                              dek_version=version, blob=getattr(obj, field))
        except CryptoError:
            self._integrity_failure(obj, spec)
            raise

    def verify(self, obj: Any, field: str) -> bool:
        """Decrypt and discard (the integrity check): True if the value opens cleanly."""
        spec = protected_field(obj.__tablename__, field)
        try:
            if isinstance(getattr(obj, field), bytes):
                self.open_blob(obj, field)
            else:
                self._open_one(obj, spec)
        except CryptoError:
            return False
        return True

    def _open_one(self, obj: Any, spec: ProtectedField) -> Secret | None:
        token = getattr(obj, spec.name)
        if token is None:
            return None
        try:
            version, dek = self._dek(obj.key_owner_uuid, spec.chain, create=False)
            return open_field(dek, table=spec.table, record_uuid=obj.uuid, field=spec.name,
                              dek_version=version, token=token)
        except CryptoError:
            self._integrity_failure(obj, spec)
            raise

    def _integrity_failure(self, obj: Any, spec: ProtectedField) -> None:
        # A security event: ids and field name only, never the ciphertext or a value.
        log.warning("integrity failure table=%s id=%s field=%s", spec.table, obj.id, spec.name)
        audit.integrity_failure(self.session, self.keyring, self.actor, spec.table, obj.id,
                                spec.name)
