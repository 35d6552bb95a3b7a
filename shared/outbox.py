"""Sending the document outbox to Redis: shared by the web app, the worker's sweep and the CLI."""

from __future__ import annotations

import logging

import redis
from sqlalchemy.orm import Session

from shared.crypto import KeyRing
from shared.domain import documents
from shared.queue import enqueue_document_job

log = logging.getLogger(__name__)


def send_pending(session: Session, connection: redis.Redis, keyring: KeyRing,
                 meeting_id: int | None = None) -> int:
    """Enqueue every job that needs it (committing each); stops quietly if Redis is down:
    the rows wait in the outbox. Returns how many were sent."""
    sent = 0
    for job in documents.jobs_to_send(session, meeting_id=meeting_id):
        try:
            enqueue_document_job(connection, keyring, job.uuid, job.requested_by)
        except redis.RedisError:
            log.warning("Redis unavailable: document job %s stays queued", job.id)
            break
        documents.mark_sent(session, job)
        session.commit()
        sent += 1
    return sent
