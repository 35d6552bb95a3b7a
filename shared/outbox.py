"""Sending the outbox to Redis (document jobs and e-mail): shared by the web app, the
worker's sweep and the CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import redis
from sqlalchemy.orm import Session

from shared.crypto import KeyRing
from shared.domain import documents, notifications
from shared.queue import enqueue_document_job, enqueue_mail_job

log = logging.getLogger(__name__)


def send_pending(session: Session, connection: redis.Redis, keyring: KeyRing,
                 meeting_id: int | None = None) -> int:
    """Enqueue every document job and e-mail that needs it (committing each); stops quietly
    if Redis is down: the rows wait in the outbox. Returns how many were sent."""
    sent: list[int] = []
    try:
        _send(session, documents.jobs_to_send(session, meeting_id=meeting_id),
              lambda job: enqueue_document_job(connection, keyring, job.uuid, job.requested_by),
              documents.mark_sent, sent)
        _send(session, notifications.to_send(session),
              lambda row: enqueue_mail_job(connection, keyring, row.uuid),
              notifications.mark_enqueued, sent)
    except redis.RedisError:  # once: a page view must not wait on Redis for every row
        log.warning("Redis unavailable: the outbox waits (%d sent)", len(sent))
    return len(sent)


def _send(session: Session, rows: Iterable, enqueue: Callable, mark: Callable,
          sent: list[int]) -> None:
    for row in rows:
        enqueue(row)
        mark(session, row)
        session.commit()
        sent.append(row.id)
