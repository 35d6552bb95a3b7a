"""The lists of sheets (a referent's own, the sheets sent to a facilitator's instance): filters,
sort orders and pages (issue 22: a list that stopped at 50 rows without saying so).

Only clear columns are filtered and shown (reference, pseudonym, structure, motif, state,
dates): a list decrypts nothing, so it writes no audit row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from shared.db import paris_to_utc
from shared.models import AgendaItem, Beneficiary, Meeting, Sheet, Structure

PAGE_SIZE = 50
SORTS = {  # key: (French label, order)
    "maj": ("Dernière mise à jour", (Sheet.urgent.desc(), Sheet.updated_at.desc())),
    "ancien": ("Plus anciennes d'abord", (Sheet.updated_at,)),
    "reference": ("Référence", (Sheet.reference,)),
    "etat": ("État", (Sheet.status, Sheet.updated_at.desc())),
}


@dataclass(frozen=True)
class SheetFilters:
    state: str = ""
    search: str = ""  # reference or pseudonym, any part
    structure_id: int | None = None
    meeting_id: int | None = None  # inscribed on that session's agenda
    since: date | None = None  # updated on or after that Paris day
    until: date | None = None  # updated on or before that Paris day
    sort: str = "maj"


@dataclass
class SheetPage:
    sheets: list[Sheet]
    total: int  # matching the filters, over every page
    page: int
    pages: int
    counts: dict[str, int]  # by state, in the whole list (before the filters)
    structures: list[Structure] = field(default_factory=list)  # for the filter's options
    meetings: list[Meeting] = field(default_factory=list)


def sheet_page(session: Session, base: Select, filters: SheetFilters, page: int = 1,
               page_size: int = PAGE_SIZE) -> SheetPage:
    """One page of ``base`` (a query of the sheets the user may list) under ``filters``."""
    query = base
    if filters.state:
        query = query.where(Sheet.status == filters.state)
    if filters.search:
        pattern = f"%{filters.search.upper()}%"
        query = query.join(Beneficiary, Beneficiary.id == Sheet.beneficiary_id).where(or_(
            func.upper(Sheet.reference).like(pattern), Beneficiary.pseudonym.like(pattern)))
    if filters.structure_id is not None:
        query = query.where(Sheet.structure_id == filters.structure_id)
    if filters.meeting_id is not None:
        query = query.where(Sheet.id.in_(select(AgendaItem.sheet_id).where(
            AgendaItem.meeting_id == filters.meeting_id)))
    if filters.since is not None:
        query = query.where(Sheet.updated_at >= _start_of(filters.since))
    if filters.until is not None:
        query = query.where(Sheet.updated_at < _start_of(filters.until + timedelta(days=1)))
    total = session.scalar(select(func.count()).select_from(
        query.with_only_columns(Sheet.id).order_by(None).subquery())) or 0
    pages = max(1, math.ceil(total / page_size))
    page = min(max(page, 1), pages)
    _label, order = SORTS.get(filters.sort, SORTS["maj"])
    sheets = list(session.scalars(query.order_by(*order, Sheet.id.desc())
                                  .offset((page - 1) * page_size).limit(page_size)))
    counts = dict(session.execute(base.with_only_columns(Sheet.status, func.count())
                                  .group_by(Sheet.status).order_by(None)).all())
    listed = base.with_only_columns(Sheet.id).order_by(None)
    structures = list(session.scalars(select(Structure).where(Structure.id.in_(
        base.with_only_columns(Sheet.structure_id).order_by(None))).order_by(Structure.name)))
    meetings = list(session.scalars(
        select(Meeting).where(Meeting.id.in_(select(AgendaItem.meeting_id).where(
            AgendaItem.sheet_id.in_(listed))))
        .order_by(Meeting.starts_at.desc()).limit(24)))
    return SheetPage(sheets, total, page, pages, counts, structures, meetings)


def _start_of(day: date) -> datetime:
    """A Paris day's first moment, as the stored UTC timestamps."""
    return paris_to_utc(datetime.combine(day, time.min))
