"""Sending the outbox to Redis (document jobs and e-mail): shared by the web app, the
worker's sweep and the CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple

import redis
from sqlalchemy.orm import Session

from shared.crypto import KeyRing
from shared.domain import documents, notifications
from shared.queue import enqueue_document_job, enqueue_mail_job

log = logging.getLogger(__name__)


# A key the worker's sweep keeps in Redis. Missing, Redis has lost what it held (restarted
# without persistence, flushed): every row handed to it and still queued is sent again.
HELD_MARK = "icli:outbox:held"


class Sent(NamedTuple):
    count: int
    unreachable: bool  # Redis did not answer: the rows wait, the next sweep sends them


def send_pending(session: Session, connection: redis.Redis, keyring: KeyRing,
                 meeting_id: int | None = None) -> Sent:
    """Enqueue every document job and e-mail that needs it (committing each); stops quietly
    if Redis is down or hung: the rows wait in the outbox."""
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
        return Sent(len(sent), unreachable=True)
    return Sent(len(sent), unreachable=False)


def resend_if_redis_lost(session: Session, connection: redis.Redis) -> bool:
    """When Redis no longer holds ``HELD_MARK`` (one atomic SET NX), mark every queued job and
    e-mail as never sent, for ``send_pending`` to send them again at once; returns whether it
    did. At the first sweep ever this only resends what may be queued already: a run refuses
    a payload whose job another run has claimed (single use)."""
    if not connection.set(HELD_MARK, "1", nx=True):
        return False
    try:
        lost = documents.forget_enqueued(session) + notifications.forget_enqueued(session)
        session.commit()
    except BaseException:  # the next sweep must see the loss again (a locked database)
        session.rollback()
        connection.delete(HELD_MARK)
        raise
    if lost:
        log.warning("Redis lost its queues: %d job(s) and e-mail(s) sent again", lost)
    return True


def _send(session: Session, rows: Iterable, enqueue: Callable, mark: Callable,
          sent: list[int]) -> None:
    for row in rows:
        enqueue(row)
        mark(session, row)
        session.commit()
        sent.append(row.id)
