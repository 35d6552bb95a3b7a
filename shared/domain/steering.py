"""The département-wide steering view (issue 22): for a year or one month of it, every
circonscription's figures side by side, the département's total, and the month-by-month
series of the year.

Counts only, as in ``statistics`` (whose month rules it follows: Paris calendar months, sheets
by submission, avis by the day they were recorded, adjournments and delays by session):
no reference, pseudonym, name or free text leaves this module.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import paris_to_utc, utc_to_paris
from shared.domain.reference import reference_labels
from shared.domain.statistics import month_bounds
from shared.errors import InvalidInputError
from shared.models import (
    AgendaItem,
    Circonscription,
    Decision,
    DeidentificationCount,
    GlobalSupport,
    Meeting,
    Sheet,
)

COLUMNS = {  # key: French heading
    "submitted": "Situations présentées",
    "decisions": "Avis rendus",
    "adjourned": "Ajournements",
    "median_delay": "Délai médian (jours)",
    "ag_entries": "Entrées en accompagnement global",
    "ag_exits": "Sorties d'accompagnement global",
    "findings_replaced": "Éléments identifiants remplacés",
}


@dataclass(frozen=True)
class Period:
    """A calendar year, or one month of it (Paris time)."""

    year: int
    month: int | None = None

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in naive Paris time, as session times are stored."""
        if self.month is not None:
            return month_bounds(self.year, self.month)
        if not 2000 <= self.year <= 2100:
            raise InvalidInputError("Année invalide : choisissez une année entre 2000 et 2100.")
        return datetime(self.year, 1, 1), datetime(self.year + 1, 1, 1)

    def utc_bounds(self) -> tuple[datetime, datetime]:
        start, end = self.bounds()
        return paris_to_utc(start), paris_to_utc(end)


@dataclass
class SteeringRow:
    label: str  # a circonscription's name, or the département
    figures: dict[str, float | int | None] = field(default_factory=dict)


@dataclass
class SteeringView:
    period: Period
    rows: list[SteeringRow]  # one per circonscription, then the département's total
    by_avis: dict[str, int]  # the département's avis over the period, largest first
    monthly: list[tuple[int, int, int]]  # the year's (month, submitted, avis), for the chart


def steering_view(session: Session, period: Period) -> SteeringView:
    start, end = period.utc_bounds()
    local_start, local_end = period.bounds()
    names = dict(session.execute(select(Circonscription.id, Circonscription.name)
                                 .order_by(Circonscription.name)).all())
    columns: dict[str, dict[int, int]] = {
        "submitted": _grouped(session, select(Sheet.circonscription_id, func.count(Sheet.id))
                              .where(Sheet.submitted_at >= start, Sheet.submitted_at < end)
                              .group_by(Sheet.circonscription_id)),
        "decisions": _grouped(session, select(Meeting.circonscription_id, func.count(Decision.id))
                              .join(Meeting, Decision.meeting_id == Meeting.id)
                              .where(Decision.created_at >= start, Decision.created_at < end)
                              .group_by(Meeting.circonscription_id)),
        "adjourned": _grouped(session, select(Meeting.circonscription_id,
                                              func.count(AgendaItem.id))
                              .join(Meeting, AgendaItem.meeting_id == Meeting.id)
                              .where(Meeting.starts_at >= local_start,
                                     Meeting.starts_at < local_end,
                                     AgendaItem.sheet_id.is_not(None),
                                     AgendaItem.outcome == "ajourne")
                              .group_by(Meeting.circonscription_id)),
        "ag_entries": _grouped(session, select(GlobalSupport.circonscription_id,
                                               func.count(GlobalSupport.id))
                               .where(GlobalSupport.started_on >= local_start.date(),
                                      GlobalSupport.started_on < local_end.date())
                               .group_by(GlobalSupport.circonscription_id)),
        "ag_exits": _grouped(session, select(GlobalSupport.circonscription_id,
                                             func.count(GlobalSupport.id))
                             .where(GlobalSupport.ended_on >= local_start.date(),
                                    GlobalSupport.ended_on < local_end.date())
                             .group_by(GlobalSupport.circonscription_id)),
        "findings_replaced": _grouped(session, select(Sheet.circonscription_id,
                                                      func.sum(DeidentificationCount.count))
                                      .join(Sheet, Sheet.id == DeidentificationCount.sheet_id)
                                      .where(DeidentificationCount.outcome == "accepted",
                                             Sheet.submitted_at >= start,
                                             Sheet.submitted_at < end)
                                      .group_by(Sheet.circonscription_id)),
    }
    delays = _delays(session, start, end)
    rows = []
    for circonscription_id, name in names.items():
        figures = {key: values.get(circonscription_id, 0) for key, values in columns.items()}
        figures["median_delay"] = _median(delays.get(circonscription_id, []))
        rows.append(SteeringRow(name, figures))
    total = {key: sum(values.values()) for key, values in columns.items()}
    total["median_delay"] = _median([d for days in delays.values() for d in days])
    rows.append(SteeringRow("Seine-Saint-Denis (total)", total))
    return SteeringView(period, rows, _by_avis(session, start, end),
                        _monthly(session, period.year))


def _grouped(session: Session, query) -> dict[int, int]:
    return {key: int(count or 0) for key, count in session.execute(query).all()}


def _delays(session: Session, start: datetime, end: datetime) -> dict[int, list[int]]:
    """Days from submission to the session, per circonscription, for the period's avis."""
    delays: dict[int, list[int]] = defaultdict(list)
    for circonscription_id, submitted_at, starts_at in session.execute(
            select(Meeting.circonscription_id, Sheet.submitted_at, Meeting.starts_at)
            .select_from(Decision).join(Sheet, Decision.sheet_id == Sheet.id)
            .join(Meeting, Decision.meeting_id == Meeting.id)
            .where(Decision.created_at >= start, Decision.created_at < end,
                   Sheet.submitted_at.is_not(None))):
        delays[circonscription_id].append(
            (starts_at.date() - utc_to_paris(submitted_at).date()).days)
    return delays


def _median(days: list[int]) -> float | None:
    return float(median(days)) if days else None


def _by_avis(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    labels = reference_labels(session).get("avis", {})
    counts: Counter[str] = Counter()
    for avis, count in session.execute(select(Decision.avis, func.count(Decision.id))
                                       .where(Decision.created_at >= start,
                                              Decision.created_at < end)
                                       .group_by(Decision.avis)):
        counts[labels.get(avis, avis)] += count
    return dict(sorted(counts.items(), key=lambda pair: (-pair[1], pair[0])))


def _monthly(session: Session, year: int) -> list[tuple[int, int, int]]:
    """The département's situations presented and avis rendered, month by month (Paris)."""
    start, end = Period(year).utc_bounds()
    submitted: Counter[int] = Counter()
    for (moment,) in session.execute(select(Sheet.submitted_at).where(
            Sheet.submitted_at >= start, Sheet.submitted_at < end)):
        submitted[utc_to_paris(moment).month] += 1
    decided: Counter[int] = Counter()
    for (moment,) in session.execute(select(Decision.created_at).where(
            Decision.created_at >= start, Decision.created_at < end)):
        decided[utc_to_paris(moment).month] += 1
    return [(month, submitted[month], decided[month]) for month in range(1, 13)]
