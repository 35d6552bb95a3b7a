"""The RQ queues and the signed, ids-only payloads they carry (docs/security.md, rule 9).

Jobs are enqueued by dotted name so intake never imports the generator, with the JSON
serializer so nobody who can write to Redis can make a worker run code.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry as ConnectionRetry
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from shared.config import Settings
from shared.crypto import KeyRing, mac, mac_matches
from shared.logs import request_id

DOCUMENTS_QUEUE = "documents"
DOCUMENT_JOB_FUNCTION = "generator.jobs.run_document_job"
DOCUMENT_JOB_TIMEOUT = 300  # seconds; a render that takes longer is stuck
# Seconds before each new run of a document job after a transient failure (RQ's retries).
DOCUMENT_RETRY_DELAYS = (5, 30, 120)
# E-mail has a queue of its own: a slow document never delays a notification.
MAIL_QUEUE = "mail"
MAIL_JOB_FUNCTION = "generator.jobs.run_mail_job"
MAIL_JOB_TIMEOUT = 120
# The signed label binds a payload to its queue: a document payload is no mail payload.
LABELS = {DOCUMENTS_QUEUE: "icli.job.v1", MAIL_QUEUE: "icli.mail.v1"}
PAYLOAD_TTL = 24 * 3600  # a payload older than this is refused, the sweep re-sends one
REQUEST_ID_META = "request_id"  # in an RQ job's meta: the web request that enqueued it


class PayloadError(Exception):
    """A job payload is forged, expired or malformed."""


# Seconds per attempt of one Redis call made while a user waits (a web request): with the one
# retry, a click waits under 2 s when Redis is down or hung, then the page says the documents
# service is unreachable (the outbox row waits, the worker's sweep sends it).
WEB_TIMEOUT = 0.9


def redis_connection(settings: Settings, *, web: bool = False) -> redis.Redis:
    """One quick retry, not redis-py's default backoff of seconds (3 retries). The web's
    connections have short timeouts and no health check (its PING would double the wait on
    a hung Redis; a stale pooled connection fails at once, and the retry reconnects)."""
    timeout = WEB_TIMEOUT if web else 10
    return redis.Redis.from_url(settings.effective_redis_url,
                                socket_connect_timeout=min(timeout, 3), socket_timeout=timeout,
                                health_check_interval=0 if web else 30,
                                retry=ConnectionRetry(ExponentialBackoff(cap=0.1, base=0.05), 1))


def document_queue(connection: redis.Redis) -> Queue:
    return Queue(DOCUMENTS_QUEUE, connection=connection, serializer=JSONSerializer)


def mail_queue(connection: redis.Redis) -> Queue:
    return Queue(MAIL_QUEUE, connection=connection, serializer=JSONSerializer)


def sign_payload(keyring: KeyRing, job_uuid: str, requester_id: int | None,
                 ttl: int = PAYLOAD_TTL, queue: str = DOCUMENTS_QUEUE) -> dict[str, Any]:
    """Ids + requester + expiry + nonce, with an HMAC under the job-signing secret."""
    payload = {
        "job": job_uuid,
        "requester": requester_id,
        "expires": int(time.time()) + ttl,
        "nonce": secrets.token_hex(8),
    }
    payload["sig"] = mac(keyring.secret("jobs"), *_signed_parts(payload, queue))
    return payload


def verify_payload(keyring: KeyRing, payload: Any,
                   queue: str = DOCUMENTS_QUEUE) -> dict[str, Any]:
    """Return the payload if its signature and expiry hold; PayloadError otherwise."""
    if not isinstance(payload, dict) or set(payload) != {"job", "requester", "expires",
                                                         "nonce", "sig"}:
        raise PayloadError("malformed payload")
    try:
        parts = _signed_parts(payload, queue)
        # Any held version: a payload signed just before a promote of the jobs secret holds.
        if not any(mac_matches(v.key, str(payload["sig"]), *parts)
                   for v in keyring.versions("jobs")):
            raise PayloadError("bad signature")
    except (TypeError, ValueError):
        raise PayloadError("malformed payload") from None
    if int(payload["expires"]) < time.time():
        raise PayloadError("expired payload")
    return payload


def _signed_parts(payload: dict[str, Any], queue: str) -> tuple:
    requester = payload["requester"]
    if requester is not None and not isinstance(requester, int):
        raise TypeError("requester")
    return (LABELS[queue], str(payload["job"]), "" if requester is None else requester,
            int(payload["expires"]), str(payload["nonce"]))


def enqueue_document_job(connection: redis.Redis, keyring: KeyRing, job_uuid: str,
                         requester_id: int | None) -> str:
    """Push one signed payload; returns the RQ job id. Raises redis errors when Redis is down."""
    job = document_queue(connection).enqueue(
        DOCUMENT_JOB_FUNCTION,
        sign_payload(keyring, job_uuid, requester_id),
        job_timeout=DOCUMENT_JOB_TIMEOUT,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        retry=Retry(max=len(DOCUMENT_RETRY_DELAYS), interval=list(DOCUMENT_RETRY_DELAYS)),
        meta=_request_meta(),
    )
    return job.id


def enqueue_mail_job(connection: redis.Redis, keyring: KeyRing, notification_uuid: str,
                     delay: timedelta | None = None) -> str:
    """Push one signed mail payload, at once or after ``delay`` (RQ's scheduler); returns the
    RQ job id. Retries are the outbox's (the row's next attempt), not RQ's."""
    queue = mail_queue(connection)
    payload = sign_payload(keyring, notification_uuid, None, queue=MAIL_QUEUE,
                           ttl=PAYLOAD_TTL + int(delay.total_seconds() if delay else 0))
    options = {"job_timeout": MAIL_JOB_TIMEOUT, "result_ttl": 3600,
               "failure_ttl": 7 * 24 * 3600, "meta": _request_meta()}
    if delay:
        return queue.enqueue_in(delay, MAIL_JOB_FUNCTION, payload, **options).id
    return queue.enqueue(MAIL_JOB_FUNCTION, payload, **options).id


def _request_meta() -> dict[str, str]:
    """The id of the web request enqueuing the job, for the worker's log lines (outside the
    signed payload: it only links log lines together)."""
    current = request_id.get()
    return {REQUEST_ID_META: current} if current else {}
