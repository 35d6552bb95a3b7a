"""Document requests as an outbox: the row is the truth, the queue only a wake-up call."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.errors import InvalidTransition
from shared.models import DocumentJob, GeneratedDocument, Meeting

# A running job whose lease has passed belongs to a dead worker and is run again.
LEASE = timedelta(minutes=6)
# A queued job sent to Redis this long ago without starting is sent again (Redis lost it).
RESEND_AFTER = timedelta(minutes=10)

# The states in which the facilitator may (re)generate the agenda.
AGENDA_STATES = {"planifiee", "odj_en_construction", "convoquee"}


def request_document(session: Session, meeting: Meeting, kind: str,
                     requester_id: int | None) -> DocumentJob:
    """Return the job for (meeting, kind, content version), creating or re-arming it.

    Idempotent: asking twice for the same content gives the same job; a failed job is
    queued again ("relancer").
    """
    if kind == "agenda" and meeting.state not in AGENDA_STATES:
        raise InvalidTransition(
            f"L'ordre du jour ne peut plus être généré : la séance est « {meeting.state_label} »."
        )
    job = session.scalars(select(DocumentJob).where(
        DocumentJob.meeting_id == meeting.id, DocumentJob.kind == kind,
        DocumentJob.content_version == meeting.content_version)).first()
    if job is None:
        job = DocumentJob(meeting_id=meeting.id, kind=kind,
                          content_version=meeting.content_version, requested_by=requester_id)
        session.add(job)
    elif job.status == "failed":
        job.status, job.step, job.error_code, job.error_message = "queued", "", None, None
        job.enqueued_at, job.requested_by = None, requester_id
    session.flush()
    return job


def jobs_to_send(session: Session, now: datetime | None = None,
                 meeting_id: int | None = None) -> list[DocumentJob]:
    """Jobs that need (re)sending: never sent, lost by Redis, or abandoned by a dead worker."""
    now = now or utcnow()
    query = select(DocumentJob).where(or_(
        (DocumentJob.status == "queued") & (
            DocumentJob.enqueued_at.is_(None) | (DocumentJob.enqueued_at < now - RESEND_AFTER)),
        (DocumentJob.status == "running") & (DocumentJob.lease_until < now),
    )).order_by(DocumentJob.id)
    if meeting_id is not None:
        query = query.where(DocumentJob.meeting_id == meeting_id)
    return list(session.scalars(query))


def mark_sent(session: Session, job: DocumentJob) -> None:
    job.enqueued_at = utcnow()
    job.step = "en file d'attente"
    session.flush()


def claim(session: Session, job_uuid: str, now: datetime | None = None) -> DocumentJob | None:
    """Compare-and-swap queued (or expired running) → running; None if another run has it."""
    now = now or utcnow()
    result = session.execute(
        update(DocumentJob)
        .where(DocumentJob.uuid == job_uuid)
        .where(or_(DocumentJob.status == "queued",
                   (DocumentJob.status == "running") & (DocumentJob.lease_until < now)))
        .values(status="running", started_at=now, lease_until=now + LEASE,
                attempts=DocumentJob.attempts + 1, step="démarrage")
    )
    if result.rowcount != 1:
        return None
    return session.scalars(select(DocumentJob).where(DocumentJob.uuid == job_uuid)
                           .execution_options(populate_existing=True)).one()


def set_step(session: Session, job: DocumentJob, step: str) -> None:
    job.step = step
    session.flush()


def complete(session: Session, job: DocumentJob, document: GeneratedDocument) -> None:
    job.status, job.step, job.document = "done", "terminé", document
    job.finished_at, job.lease_until = utcnow(), None
    job.error_code = job.error_message = None
    session.flush()


def fail(session: Session, job: DocumentJob, code: str, message: str) -> None:
    """A deterministic failure: shown to the user in French, not retried automatically."""
    job.status, job.error_code, job.error_message = "failed", code, message[:400]
    job.finished_at, job.lease_until = utcnow(), None
    session.flush()


def release_for_retry(session: Session, job: DocumentJob) -> None:
    """A transient failure: back to the queue, RQ's retry (or the sweep) runs it again."""
    job.status, job.lease_until, job.step = "queued", None, "nouvelle tentative"
    session.flush()


def latest_jobs(session: Session, meeting_id: int) -> dict[str, DocumentJob]:
    """The most recent job of each kind for a meeting."""
    jobs = session.scalars(select(DocumentJob).where(DocumentJob.meeting_id == meeting_id)
                           .order_by(DocumentJob.id)).all()
    return {job.kind: job for job in jobs}
