"""The worker process: an RQ Worker on the documents and mail queues, JSON serializer.

docxtpl is imported before forking so each job's work horse starts warm. Between jobs the
worker sweeps the outbox: jobs and e-mails never sent (Redis was down), lost, due for a
retry, or abandoned by a killed worker past their lease are sent again; the sweep also
writes the directors' visa reminders and the daily digests when they are due; once a day one
of the workers runs the retention purge (it needs no identity key: purging deletes, it never
decrypts); each maintenance step reloads the keyring if it changed and reports the versions
held (shared/heartbeat.py).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from datetime import timedelta

import redis
from rq import Worker
from rq.serializers import JSONSerializer
from sqlalchemy.exc import IntegrityError

# Loaded before fork (docxtpl, the builders) and warmed up (warm_up): each job starts warm.
from generator import runtime
from generator.contexts import sample_context
from generator.jobs import AllowlistedJob
from generator.pdf import PdfConverter, PdfError
from generator.render import TEMPLATES, RenderError, render, template_path
from shared import audit, outbox, retention
from shared.config import Settings, load_settings
from shared.domain import notifications
from shared.keys import record_key_versions
from shared.logs import configure_logging
from shared.queue import document_queue, mail_queue, redis_connection

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 15  # seconds between outbox sweeps


def sweep(rt: runtime.Runtime, connection: redis.Redis) -> int:
    """Write the notifications that are due, then send every job and e-mail that needs it;
    returns how many were sent."""
    with rt.sessions() as session:
        write_due_notifications(session, rt.settings)
        sent = outbox.send_pending(session, connection, rt.keyring)
    if sent:
        log.info("sweep sent %d job(s) and e-mail(s)", sent)
    return sent


def write_due_notifications(session, settings: Settings) -> None:
    """Visa reminders and daily digests; another worker writing the same one first wins."""
    try:
        notifications.remind_directors(session, timedelta(days=settings.visa_reminder_days))
        notifications.release_digests(session, settings.digest_hour)
        session.commit()
    except IntegrityError:  # the same reminder or digest, written by another worker
        session.rollback()


def daily_retention(rt: runtime.Runtime) -> retention.Report | None:
    """The retention purge, once a day across every worker (the last run is in the database)."""
    with rt.sessions() as session:
        if not retention.claim_daily_run(session, "retention"):
            return None
        try:
            report = retention.run(session, rt.keyring, audit.WORKER,
                                   retention.Policy.from_settings(rt.settings))
        except audit.ChainBrokenError as exc:
            log.error("retention skipped: %s", exc)
            return None
        session.commit()
    log.info("retention: %d person(s), %d dossier(s), %d audit row(s) purged",
             len(report.people), len(report.dossier_ids), report.audit_rows)
    return report


def warm_up(rt: runtime.Runtime) -> None:
    """Render each built-in template once with fictitious data (and convert one to PDF)
    before RQ forks: every work horse then starts from code the interpreter has already
    specialised — a cold horse renders about twice slower — and from a LibreOffice that has
    loaded its fonts. gc.freeze() keeps the collector off the parent's objects in the horses,
    so they share those pages instead of copying them."""
    docx = None
    for kind, name in TEMPLATES.items():
        path = template_path(rt.settings.templates_dir, kind)
        if not path.is_file():
            continue
        try:
            docx = render(path, sample_context(kind), name)
        except RenderError as exc:  # the job will say it; starting is not the place
            log.warning("warm-up: %s", exc)
    if docx is not None and rt.pdf is not None and rt.pdf.available:
        with contextlib.suppress(PdfError):
            rt.pdf.convert(docx)
    gc.collect()
    gc.freeze()


class DocumentWorker(Worker):
    """RQ's forking worker plus, in its maintenance step, the keyring heartbeat (work horses
    fork with the keys reloaded), the outbox sweep and the daily retention purge."""

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        rt = runtime.current()
        rt.heartbeat.beat(force=True)
        try:
            sweep(rt, self.connection)
        except redis.RedisError:
            log.warning("sweep skipped: Redis unavailable")
        daily_retention(rt)


def main(settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    configure_logging(settings, "worker")
    try:
        _serve(settings)
    except KeyboardInterrupt:  # Ctrl-C while starting; RQ handles signals once it works
        log.info("worker stopped while starting")


def _serve(settings: Settings) -> None:
    rt = runtime.init(settings)
    with rt.sessions() as session:
        record_key_versions(session, rt.keyring)
        session.commit()
    rt.heartbeat.beat(force=True)
    connection = redis_connection(rt.settings)
    while True:  # wait for Redis instead of dying when it is not up yet
        try:
            connection.ping()
            break
        except redis.RedisError:
            log.warning("Redis unavailable, retrying in 2 s")
            time.sleep(2)
    sweep(rt, connection)
    rt.pdf = PdfConverter()  # one resident LibreOffice, started before RQ forks
    try:
        if rt.pdf.available:
            try:
                rt.pdf.start()
            except Exception as exc:
                log.warning("LibreOffice did not start (%s): PDF unavailable",
                            type(exc).__name__)
        else:
            log.info("LibreOffice not installed: documents are built as .docx only")
        warm_up(rt)
        # Sweep at least twice per lease: an abandoned job is taken over soon after it expires.
        interval = max(1, min(SWEEP_INTERVAL, settings.job_lease_seconds // 2))
        worker = DocumentWorker([mail_queue(connection), document_queue(connection)],
                                connection=connection,
                                serializer=JSONSerializer, job_class=AllowlistedJob,
                                maintenance_interval=interval,
                                log_job_description=False)  # payloads stay out of the logs
        worker.work(with_scheduler=True, logging_level=settings.log_level)
    finally:
        rt.pdf.close()
