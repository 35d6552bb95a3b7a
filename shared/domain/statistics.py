"""Monthly steering figures per circonscription (docs/domain.md).

Counts only: no reference, pseudonym, name or free text ever leaves these functions. Months
are calendar months in Paris time: a sheet submitted at 00:30 on the 1st counts in that
month, though it is stored as UTC the day before. Medians and means are computed in Python so
that the same SQL runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean, median

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import deidentify
from shared.db import paris_to_utc, utc_to_paris
from shared.domain.reference import reference_labels
from shared.errors import InvalidInputError
from shared.models import (
    AgendaItem,
    Decision,
    DeidentificationCount,
    Meeting,
    Sheet,
    Structure,
)
from shared.models.reference import STRUCTURE_TYPES

NO_MOTIF = "Motif non renseigné"


@dataclass(frozen=True)
class SubmittedSheets:
    """Sheets submitted in the month; each breakdown maps a label to a count, largest first."""

    total: int
    by_motif: dict[str, int]
    by_structure_type: dict[str, int]


@dataclass(frozen=True)
class Outcomes:
    """Avis recorded in the month (by avis label) and situations adjourned at its sessions."""

    decisions: int
    by_avis: dict[str, int]
    adjourned: int


@dataclass(frozen=True)
class Delay:
    """Days from a sheet's submission to the session of its avis, over the month's avis."""

    count: int
    median_days: float | None
    mean_days: float | None


@dataclass(frozen=True)
class MonthlyStatistics:
    circonscription_id: int
    year: int
    month: int
    submitted: SubmittedSheets
    outcomes: Outcomes
    delay: Delay
    # The referents' review of identifying words in the month's submitted sheets (issue #8):
    # label ("Remplacés – numéro de téléphone") -> count, never the words.
    text_review: dict[str, int]


REVIEW_OUTCOMES = {"accepted": "Remplacés", "dismissed": "Jugés non identifiants"}


def text_review(session: Session, circonscription_id: int, year: int,
                month: int) -> dict[str, int]:
    """Findings replaced or dismissed by kind, over the sheets submitted in the month."""
    start, end = utc_month_bounds(year, month)
    rows = session.execute(
        select(DeidentificationCount.outcome, DeidentificationCount.kind,
               func.sum(DeidentificationCount.count))
        .join(Sheet, Sheet.id == DeidentificationCount.sheet_id)
        .where(Sheet.circonscription_id == circonscription_id,
               Sheet.submitted_at >= start, Sheet.submitted_at < end)
        .group_by(DeidentificationCount.outcome, DeidentificationCount.kind)).all()
    counts: Counter[str] = Counter()
    for outcome, kind, count in rows:
        label = f"{REVIEW_OUTCOMES.get(outcome, outcome)} – {deidentify.KINDS.get(kind, kind)}"
        counts[label] += int(count)
    return _by_label(counts)


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """[start, end) of the month in Paris time (naive), as session times are stored."""
    if not (1 <= month <= 12 and 2000 <= year <= 2100):
        raise InvalidInputError("Mois invalide : indiquez un mois au format AAAA-MM.")
    start = datetime(year, month, 1)
    end = datetime(year + (month == 12), month % 12 + 1, 1)
    return start, end


def utc_month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """The same month's bounds in naive UTC, as the other timestamps are stored."""
    start, end = month_bounds(year, month)
    return paris_to_utc(start), paris_to_utc(end)


def _by_label(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda pair: (-pair[1], pair[0])))


def submitted_sheets(session: Session, circonscription_id: int, year: int,
                     month: int) -> SubmittedSheets:
    """Sheets of the circonscription whose ``submitted_at`` falls in the month."""
    start, end = utc_month_bounds(year, month)
    rows = session.execute(
        select(Sheet.motif, Structure.type, func.count(Sheet.id))
        .join(Structure, Sheet.structure_id == Structure.id)
        .where(Sheet.circonscription_id == circonscription_id,
               Sheet.submitted_at >= start, Sheet.submitted_at < end)
        .group_by(Sheet.motif, Structure.type)).all()
    motifs = reference_labels(session).get("motif", {})
    by_motif: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for motif, structure_type, count in rows:
        by_motif[motifs.get(motif, motif) if motif else NO_MOTIF] += count
        by_type[STRUCTURE_TYPES.get(structure_type, structure_type)] += count
    return SubmittedSheets(total=sum(by_motif.values()), by_motif=_by_label(by_motif),
                           by_structure_type=_by_label(by_type))


def outcomes(session: Session, circonscription_id: int, year: int, month: int) -> Outcomes:
    """Avis recorded in the month at the circonscription's sessions, and the situations
    adjourned at its sessions held (or planned) in the month."""
    start, end = utc_month_bounds(year, month)
    rows = session.execute(
        select(Decision.avis, func.count(Decision.id))
        .join(Meeting, Decision.meeting_id == Meeting.id)
        .where(Meeting.circonscription_id == circonscription_id,
               Decision.created_at >= start, Decision.created_at < end)
        .group_by(Decision.avis)).all()
    avis_labels = reference_labels(session).get("avis", {})
    by_avis: Counter[str] = Counter()
    for avis, count in rows:
        by_avis[avis_labels.get(avis, avis)] += count
    local_start, local_end = month_bounds(year, month)
    adjourned = session.scalar(
        select(func.count(AgendaItem.id)).join(Meeting, AgendaItem.meeting_id == Meeting.id)
        .where(Meeting.circonscription_id == circonscription_id,
               Meeting.starts_at >= local_start, Meeting.starts_at < local_end,
               AgendaItem.sheet_id.is_not(None), AgendaItem.outcome == "ajourne")) or 0
    return Outcomes(decisions=sum(by_avis.values()), by_avis=_by_label(by_avis),
                    adjourned=adjourned)


def delay(session: Session, circonscription_id: int, year: int, month: int) -> Delay:
    """Calendar days (Paris) from submission to the session day, for the avis of the month."""
    start, end = utc_month_bounds(year, month)
    rows = session.execute(
        select(Sheet.submitted_at, Meeting.starts_at).select_from(Decision)
        .join(Sheet, Decision.sheet_id == Sheet.id)
        .join(Meeting, Decision.meeting_id == Meeting.id)
        .where(Meeting.circonscription_id == circonscription_id,
               Decision.created_at >= start, Decision.created_at < end,
               Sheet.submitted_at.is_not(None))).all()
    days = [(starts_at.date() - utc_to_paris(submitted_at).date()).days
            for submitted_at, starts_at in rows]
    if not days:
        return Delay(count=0, median_days=None, mean_days=None)
    return Delay(count=len(days), median_days=float(median(days)), mean_days=fmean(days))


def monthly_statistics(session: Session, circonscription_id: int, year: int,
                       month: int) -> MonthlyStatistics:
    """Every figure of the statistics page (and of its CSV) for one circonscription and month."""
    return MonthlyStatistics(
        circonscription_id=circonscription_id, year=year, month=month,
        submitted=submitted_sheets(session, circonscription_id, year, month),
        outcomes=outcomes(session, circonscription_id, year, month),
        delay=delay(session, circonscription_id, year, month),
        text_review=text_review(session, circonscription_id, year, month),
    )
