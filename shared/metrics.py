"""Prometheus metrics: what operators graph and alert on (docs/operations.md, « Supervision »).

Counts, durations and codes only: no label ever carries something a user typed. A route is
its URL rule (``/fiches/<int:sheet_id>``, never the path), a job is its queue, document kind
and outcome.

Two kinds of figures:
- events, counted by the process they happen in: requests (web), jobs (worker). Under
  gunicorn the web's workers write theirs to files in ``PROMETHEUS_MULTIPROC_DIR`` (set in
  the environment, an empty directory per start) and ``/metrics`` sums them; the worker
  serves its own at ``ICLI_WORKER_METRICS_ADDRESS``.
- the instance's state, read from the database and Redis when ``/metrics`` is scraped: so any
  web process gives the same answer, and nothing is lost when a process restarts.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.domain import job_board, notifications, rotation
from shared.heartbeat import live_processes
from shared.models import AuditEvent
from shared.queue import document_queue, mail_queue

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client itself
MULTIPROCESS = MULTIPROCESS_VARIABLE in os.environ

# registry=None: each process exports them through its own registry (``web_registry``,
# ``serve_worker_metrics``), never through the library's global one.
REQUESTS = Counter("icli_http_requests", "HTTP requests answered",
                   ["route", "method", "status"], registry=None)
REQUEST_SECONDS = Histogram(
    "icli_http_request_duration_seconds", "Time to answer an HTTP request",
    ["route", "method"], registry=None,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
JOB_SECONDS = Histogram(
    "icli_job_duration_seconds", "Time a worker spent on a job, by queue, kind and outcome "
    "(done, sent, failed, retry, waiting, superseded, refused)",
    ["queue", "kind", "outcome"], registry=None,
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(route, method, str(status)).inc()
    REQUEST_SECONDS.labels(route, method).observe(seconds)


@dataclass
class JobObservation:
    """Filled in by the job as it learns its kind and its outcome."""

    kind: str = "unknown"
    outcome: str = ""


@contextlib.contextmanager
def job_observed(queue: str) -> Iterator[JobObservation]:
    """Times one job; a job that raises counts as ``retry`` (RQ runs it again)."""
    observation = JobObservation()
    started = time.perf_counter()
    try:
        yield observation
    except BaseException:
        observation.outcome = "retry"
        raise
    finally:
        JOB_SECONDS.labels(queue, observation.kind, observation.outcome or "refused").observe(
            time.perf_counter() - started)


def serve_worker_metrics(address: str) -> None:
    """The worker's job figures at http://address/metrics, from a background thread."""
    host, _, port = address.rpartition(":")
    registry = CollectorRegistry()
    registry.register(JOB_SECONDS)
    start_http_server(int(port), addr=host, registry=registry)


def web_registry(sessions: sessionmaker[Session], connection: redis.Redis) -> CollectorRegistry:
    """What the web's /metrics exports: the requests of every web process, and the state."""
    registry = CollectorRegistry()
    if MULTIPROCESS:
        MultiProcessCollector(registry)
    else:
        registry.register(REQUESTS)
        registry.register(REQUEST_SECONDS)
    registry.register(StateCollector(sessions, connection))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


class StateCollector:
    """Reads the instance's state at each scrape. A source that does not answer is reported
    by ``icli_up{source}`` = 0, and its figures are left out (not reported as zero)."""

    def __init__(self, sessions: sessionmaker[Session], connection: redis.Redis) -> None:
        self.sessions = sessions
        self.connection = connection

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("icli_up", "Whether a source answered this scrape",
                               labels=["source"])
        try:
            yield from self._queues()
        except redis.RedisError:
            up.add_metric(["redis"], 0)
        else:
            up.add_metric(["redis"], 1)
        try:
            with self.sessions() as session:
                families = list(self._database(session))
        except SQLAlchemyError:
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            yield from families
        yield up

    def _queues(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("icli_queue_jobs", "Jobs waiting in each Redis queue",
                                  labels=["queue"])
        for queue in (document_queue(self.connection), mail_queue(self.connection)):
            depth.add_metric([queue.name], queue.count)
        yield depth

    def _database(self, session: Session) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("icli_document_jobs", "Document jobs by kind and state",
                                 labels=["kind", "state"])
        for (kind, state), count in sorted(job_board.counts_by_kind_and_state(session).items()):
            jobs.add_metric([kind, state], count)
        yield jobs
        mails = GaugeMetricFamily("icli_emails", "E-mails by state (queued and sending are "
                                  "pending, failed needs an administrator)", labels=["state"])
        for state, count in sorted(notifications.counts_by_state(session).items()):
            mails.add_metric([state], count)
        yield mails
        live = GaugeMetricFamily("icli_live_processes", "Processes seen within the last "
                                 "minute, by kind (worker, intake)", labels=["kind"])
        kinds: dict[str, int] = {"worker": 0, "intake": 0}
        for process in live_processes(session):
            kinds[process.kind] = kinds.get(process.kind, 0) + 1
        for kind, count in sorted(kinds.items()):
            live.add_metric([kind], count)
        yield live
        keys = GaugeMetricFamily("icli_key_rows", "Rows wrapped or indexed by each key "
                                 "version (a rotation is done when the old one reaches 0)",
                                 labels=["chain", "version"])
        for chain in rotation.ROTATED_CHAINS:
            for version, count in sorted(rotation.rows_by_version(session, chain).items()):
                keys.add_metric([chain, str(version)], count)
        yield keys
        yield GaugeMetricFamily(
            "icli_audit_rows_unsealed", "Audit rows the worker has not sealed yet",
            value=session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.seq.is_(None))) or 0)
