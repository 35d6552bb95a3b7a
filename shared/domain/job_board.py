"""What administrators read about document generation (the « Travaux » page): jobs counted,
failed and stuck, and the live workers. Reading only; ids, codes and places, never a value
about a person (a job's error message is French text written without one)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shared import heartbeat
from shared.crypto import ALL_CHAINS
from shared.db import utcnow
from shared.models import DocumentJob, Meeting

# A queued job neither handed to Redis nor taken by a worker this long after it was (re)queued
# is shown as stuck. Shorter than the sweep's resend delay (documents.RESEND_AFTER): the
# administrator learns of it before the sweep acts, and a job handed over a moment ago (the
# request that queued it sends it at once) is not shown.
QUEUED_TOO_LONG = timedelta(minutes=5)

STUCK_REASONS = {
    "lease_expired": "Bail expiré : le service de génération qui la traitait ne répond plus ; "
                     "un autre service la reprendra.",
    "never_sent": "Jamais transmise à la file d'attente (Redis injoignable ?) ; elle le sera "
                  "au prochain passage d'un service de génération.",
    "not_started": "Transmise à la file d'attente mais jamais démarrée ; elle sera renvoyée "
                   "si la file l'a perdue.",
}


@dataclass(frozen=True)
class FailedJob:
    job: DocumentJob
    meeting_starts_at: datetime | None  # None for a sheet's own document (no session)


@dataclass(frozen=True)
class StuckJob:
    job: DocumentJob
    reason: str  # a key of STUCK_REASONS
    since: datetime | None

    @property
    def reason_label(self) -> str:
        return STUCK_REASONS[self.reason]


@dataclass(frozen=True)
class LiveWorker:
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    converts_pdf: bool | None  # None: LibreOffice not started yet, or not reported
    held: dict[str, list[int]]

    @property
    def held_label(self) -> str:
        """« content v1, v2 · audit v1 »: chains in the keyring's order, numbers only."""
        order = {chain: n for n, chain in enumerate(ALL_CHAINS)}
        chains = sorted(self.held, key=lambda chain: (order.get(chain, len(order)), chain))
        return " · ".join(f"{chain} " + ", ".join(f"v{v}" for v in sorted(self.held[chain]))
                          for chain in chains if self.held[chain])


def counts_by_kind_and_state(session: Session) -> dict[tuple[str, str], int]:
    """Jobs by (kind, status), in one query; pairs with no job are absent."""
    rows = session.execute(select(DocumentJob.kind, DocumentJob.status, func.count())
                           .group_by(DocumentJob.kind, DocumentJob.status))
    return {(kind, status): count for kind, status, count in rows}


def totals_by_state(counts: dict[tuple[str, str], int]) -> dict[str, int]:
    """The counts summed over kinds (the table's last row)."""
    totals: Counter[str] = Counter()
    for (_kind, status), count in counts.items():
        totals[status] += count
    return dict(totals)


def failed_jobs(session: Session, limit: int = 100) -> list[FailedJob]:
    """The latest failed jobs, with their session's date when they belong to one."""
    rows = session.execute(
        select(DocumentJob, Meeting.starts_at)
        .outerjoin(Meeting, Meeting.id == DocumentJob.meeting_id)
        .where(DocumentJob.status == "failed")
        .order_by(DocumentJob.finished_at.desc(), DocumentJob.id.desc()).limit(limit))
    return [FailedJob(job, starts_at) for job, starts_at in rows]


def stuck_jobs(session: Session, now: datetime | None = None) -> list[StuckJob]:
    """Running jobs whose worker stopped extending the lease (it died: the sweep of another
    worker takes them over), and queued jobs nobody has started for ``QUEUED_TOO_LONG``."""
    now = now or utcnow()
    cutoff = now - QUEUED_TOO_LONG
    # A job re-armed (failed, then « Relancer ») keeps its old finished_at; requeuing records
    # no time of its own, so the latest of creation and end is when it was queued at the
    # earliest (finished_at, when set, always follows created_at).
    queued_since = func.coalesce(DocumentJob.finished_at, DocumentJob.created_at)
    jobs = session.scalars(select(DocumentJob).where(or_(
        (DocumentJob.status == "running") & (DocumentJob.lease_until < now),
        (DocumentJob.status == "queued") & DocumentJob.enqueued_at.is_(None)
        & (queued_since < cutoff),
        (DocumentJob.status == "queued") & (DocumentJob.enqueued_at < cutoff),
    )).order_by(DocumentJob.id))
    stuck = []
    for job in jobs:
        if job.status == "running":
            stuck.append(StuckJob(job, "lease_expired", job.lease_until))
        elif job.enqueued_at is None:
            stuck.append(StuckJob(job, "never_sent", job.finished_at or job.created_at))
        else:
            stuck.append(StuckJob(job, "not_started", job.enqueued_at))
    return stuck


def live_workers(session: Session, now: datetime | None = None) -> list[LiveWorker]:
    """The document workers seen within ``heartbeat.LIVE_FOR``, oldest first."""
    return [LiveWorker(host=p.host, pid=p.pid, started_at=p.started_at, seen_at=p.seen_at,
                       converts_pdf=p.converts_pdf, held=json.loads(p.held))
            for p in heartbeat.live_processes(session, now) if p.kind == "worker"]
