"""The audit trail as the DPO reads it: filtered, paginated, exported. Ids only, no values."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from shared.models import AuditEvent, GeneratedDocument, IdentityRecord, Sheet, User

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    user_id: int | None = None
    reference: str = ""  # a sheet reference (ICL-…): the ids it maps to
    action: str = ""
    since: date | None = None
    until: date | None = None  # inclusive


def reference_ids(session: Session, reference: str) -> dict[str, list[int]]:
    """The records a sheet reference stands for, by table: the sheet, its person, their
    identity records and the sheet's own documents. Empty when the reference is unknown."""
    sheet = session.scalar(select(Sheet).where(Sheet.reference == reference.strip().upper()))
    if sheet is None:
        return {}
    return {
        "sheets": [sheet.id],
        "beneficiaries": [sheet.beneficiary_id],
        "identity_records": list(session.scalars(select(IdentityRecord.id).where(
            IdentityRecord.beneficiary_id == sheet.beneficiary_id))),
        "generated_documents": list(session.scalars(select(GeneratedDocument.id).where(
            GeneratedDocument.sheet_id == sheet.id))),
    }


def _mentions(ids: Iterable[int]):
    """Rows whose comma-separated object_ids list holds one of ``ids``."""
    column = AuditEvent.object_ids
    return or_(*(or_(column == str(i), column.like(f"{i},%"), column.like(f"%,{i}"),
                     column.like(f"%,{i},%")) for i in ids))


def _query(session: Session, filters: Filters) -> Select | None:
    query = select(AuditEvent)
    if filters.user_id:
        query = query.where(AuditEvent.actor_id == filters.user_id)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.since:
        query = query.where(AuditEvent.at >= datetime.combine(filters.since, time()))
    if filters.until:
        query = query.where(AuditEvent.at < datetime.combine(filters.until + timedelta(days=1),
                                                             time()))
    if filters.reference:
        ids = {table: found for table, found in reference_ids(session, filters.reference).items()
               if found}
        if not ids:
            return None
        query = query.where(or_(*(and_(AuditEvent.object_type == table, _mentions(found))
                                  for table, found in ids.items())))
    return query


def search(session: Session, filters: Filters, page: int = 1,
           page_size: int = PAGE_SIZE) -> tuple[list[AuditEvent], int]:
    """One page of matching rows, newest first, and the total count."""
    query = _query(session, filters)
    if query is None:
        return [], 0
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(AuditEvent.seq.desc())
                           .offset((max(page, 1) - 1) * page_size).limit(page_size)).all()
    return list(rows), total


def actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def actor_names(session: Session, rows: Iterable[AuditEvent]) -> dict[int, str]:
    """Names of the professionals who acted (accounts, not beneficiaries)."""
    ids = {r.actor_id for r in rows if r.actor_id is not None}
    return dict(session.execute(select(User.id, User.full_name).where(User.id.in_(ids))).all())


CSV_HEADER = ["N°", "Date (UTC)", "Utilisateur", "Compte", "Action", "Objet", "Identifiants",
              "Champs", "Finalité"]


def export_csv(session: Session, filters: Filters) -> tuple[str, int]:
    """Every matching row, oldest first, as CSV for a spreadsheet (';', UTF-8 BOM)."""
    query = _query(session, filters)
    rows = list(session.scalars(query.order_by(AuditEvent.seq))) if query is not None else []
    names = actor_names(session, rows)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow([row.seq, row.at.isoformat(sep=" ", timespec="seconds"),
                         row.actor_id or "", names.get(row.actor_id, row.actor_label),
                         row.action, row.object_type, row.object_ids, row.fields, row.purpose])
    return "\ufeff" + out.getvalue(), len(rows)
