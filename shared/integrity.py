"""The administrator's fsck: open every protected value, report counts and failing ids."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.crypto import KeyRing
from shared.db import Base
from shared.domain import audit
from shared.encrypted import Vault
from shared.protected import PROTECTED_FIELDS


@dataclass
class TableReport:
    rows: int = 0
    values: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)  # (row id, field)


def _model_for(table: str):
    for mapper in Base.registry.mappers:
        if mapper.class_.__tablename__ == table:
            return mapper.class_
    raise KeyError(table)


def check_all(session: Session, keyring: KeyRing, batch: int = 500) -> dict[str, TableReport]:
    """Decrypt (and discard) every protected value; plaintext never leaves this function."""
    reports: dict[str, TableReport] = {}
    vault = Vault(session, keyring, audit.CLI)
    for table, fields in PROTECTED_FIELDS.items():
        model = _model_for(table)
        report = reports[table] = TableReport()
        last_id = 0
        while True:
            rows = session.scalars(select(model).where(model.id > last_id)
                                   .order_by(model.id).limit(batch)).all()
            if not rows:
                break
            for row in rows:
                report.rows += 1
                for name in fields:
                    if getattr(row, name) is None:
                        continue
                    report.values += 1
                    if not vault.verify(row, name):
                        report.failures.append((row.id, name))
            last_id = rows[-1].id
            session.expunge_all()
            vault = Vault(session, keyring, audit.CLI)  # release this batch's data keys
    audit.record(session, keyring, audit.CLI, "integrity_check",
                 purpose=f"{sum(len(r.failures) for r in reports.values())} failure(s)")
    return reports
