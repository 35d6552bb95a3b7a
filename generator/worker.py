"""The worker process: an RQ worker on the documents and mail queues, JSON serializer.

Jobs run in the worker process itself, not in a work horse forked per job: a horse starts
with cold caches and pays a copy-on-write fault on every page it touches (about 20,000 for a
200-situation dossier, 70-80 ms: bench/README.md). What the fork gave is kept otherwise: a
killed worker's job is taken over once its lease expires, RQ's timeout still interrupts a job,
each job's garbage is collected as soon as it ends (the worker is back to its size at start),
and a worker whose memory grew past ``ICLI_WORKER_MEMORY_MB`` all the same restarts itself
(same process id, a fresh interpreter) between two jobs.

Between jobs the worker sweeps the outbox: jobs and e-mails never sent (Redis was down), lost
(Redis restarted empty: ``outbox.resend_if_redis_lost``), due for a retry, or abandoned by a
killed worker past their lease are sent again; the sweep
also writes the directors' visa reminders and the daily digests when they are due. Each
maintenance step, and the end of each job, seals the audit rows committed since (one worker at
a time: shared/domain/audit.py); the step then writes a signed checkpoint of the chain's head
(ICLI_AUDIT_CHECKPOINT_FILE). Once a day one of the workers runs the retention purge (it needs
no identity key: purging deletes, it never decrypts); each maintenance step reloads the
keyring if it changed and reports the versions held (shared/heartbeat.py).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import time
from datetime import timedelta

import redis
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.serializers import JSONSerializer
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

# Loaded at start (docxtpl, the builders) and warmed up (warm_up): the first job starts warm.
from generator import runtime
from generator.contexts import sample_context
from generator.jobs import AllowlistedJob
from generator.pdf import PdfConverter, PdfError
from generator.render import TEMPLATES, RenderError, render, template_path
from shared import audit_checkpoint, outbox
from shared.config import Settings, load_settings
from shared.domain import audit, icag, notifications, retention, users
from shared.logs import configure_logging, request_id, safe_request_id
from shared.metrics import serve_worker_metrics
from shared.migrate import SchemaNotCurrentError
from shared.processes import die_with_parent
from shared.queue import REQUEST_ID_META, document_queue, mail_queue, redis_connection

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 15  # seconds between outbox sweeps
# How long the thread listening for RQ's commands (shutdown, stop or kill a job) waits per
# read, hence the longest a stop waits for it. RQ (3.0) waits 60 s; with redis-py >= 8.2,
# whose PubSubWorkerThread.stop() joins the thread, a stop could take that long.
COMMANDS_POLL = 1.0
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _child_stops_on_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # A worker killed with SIGKILL must not leave its scheduler running, holding the
    # scheduler's lock in Redis: the next worker could never schedule anything.
    die_with_parent()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


# RQ's scheduler is a fork of the worker. Until it installs its own handlers, a stop signal
# (the worker stopping it while it starts) must end it, not raise KeyboardInterrupt into a
# copy of the worker's code: the fork happens with stop signals blocked, and the child
# unblocks them once their default action is back.
os.register_at_fork(
    before=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS),
    after_in_parent=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS),
    after_in_child=_child_stops_on_signals)


def sweep(rt: runtime.Runtime, connection: redis.Redis) -> int:
    """Write the notifications that are due, then send every job and e-mail that needs it;
    returns how many were sent."""
    with rt.sessions() as session:
        write_due_notifications(session, rt.settings)
        outbox.resend_if_redis_lost(session, connection)
        sent = outbox.send_pending(session, connection, rt.keyring).count
    if sent:
        log.info("sweep sent %d job(s) and e-mail(s)", sent)
    return sent


def write_due_notifications(session, settings: Settings) -> None:
    """Visa reminders, daily digests and accompagnement global terms; another worker writing
    the same one first wins."""
    try:
        notifications.remind_directors(session, timedelta(days=settings.visa_reminder_days))
        notifications.release_digests(session, settings.digest_hour)
        icag.remind_terms(session)
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


def expire_accounts(rt: runtime.Runtime) -> list[int]:
    """Deactivate the accounts whose habilitation ended (the web already refuses them from
    that day on; this makes it visible and final). Returns their ids."""
    with rt.sessions() as session:
        expired = users.deactivate_expired(session, rt.keyring, audit.WORKER)
        session.commit()
    if expired:
        log.info("%d account(s) deactivated at the end of their habilitation", len(expired))
    return expired


def seal_audit(rt: runtime.Runtime) -> int:
    """Chain the audit rows committed since the last step (another worker sealing at the
    same moment makes this one wait, then find nothing left); returns how many."""
    try:
        with rt.sessions() as session:
            sealed = audit.seal(session, rt.keyring)
            session.commit()
    except SQLAlchemyError as exc:  # the next step seals them
        log.error("audit rows not sealed (%s)", type(exc).__name__)
        return 0
    if sealed:
        log.debug("%d audit row(s) sealed", sealed)
    return sealed


def write_audit_checkpoint(rt: runtime.Runtime) -> None:
    """A signed checkpoint of the audit head to ICLI_AUDIT_CHECKPOINT_FILE, when it is set."""
    destination = rt.settings.audit_checkpoint_file
    if destination is None:
        return
    with rt.sessions() as session:
        checkpoint = audit_checkpoint.take(session, rt.keyring)
    try:
        audit_checkpoint.write(destination, checkpoint)
    except OSError as exc:
        log.error("audit checkpoint not written (%s)", type(exc).__name__)


def warm_up(rt: runtime.Runtime) -> None:
    """Render each built-in template once with fictitious data (and convert one to PDF)
    before the first job: it starts from code the interpreter has already specialised — cold,
    it renders about twice slower — and from a LibreOffice that has loaded its fonts.
    gc.freeze() then keeps the collector from scanning these long-lived objects again."""
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


def resident_memory() -> int | None:
    """This process's resident set in bytes (Linux); None where /proc is not available."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def requested_by(job) -> str | None:
    """The id of the web request that enqueued ``job``, if its meta (whatever Redis held)
    carries a well-formed one."""
    meta = job.meta if isinstance(job.meta, dict) else {}
    return safe_request_id(meta.get(REQUEST_ID_META))


class DocumentWorker(SimpleWorker):
    """RQ's in-process worker plus, in its maintenance step, the keyring heartbeat, the audit
    sealer, the outbox sweep and the daily retention purge; it stops after a job that left it
    above ``memory_limit`` bytes (``outgrown``: main() then restarts it, unless it was asked
    to stop: ``restarts``)."""

    def __init__(self, *args, memory_limit: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.memory_limit = memory_limit
        self.outgrown = False
        self.stop_asked = False  # a stop signal came: no restart after an outgrown job

    @property
    def restarts(self) -> bool:
        return self.outgrown and not self.stop_asked

    def work(self, *args, **kwargs) -> bool:
        try:
            return super().work(*args, **kwargs)
        except (KeyboardInterrupt, StopRequested):
            # Stopped before RQ's loop and handlers were in place (while it registered and
            # forked its scheduler): nothing was torn down, and the scheduler process would
            # keep this one from exiting.
            self.teardown()
            raise

    def _shutdown(self) -> None:
        """RQ's, which raises StopRequested when idle, but first sets the flag its loop
        checks at each turn. A stop signal that lands while Python runs a ``__del__``
        (garbage collection, e.g. a Redis connection pool's) has that exception swallowed
        ("Exception ignored in …"): without the flag the worker never stopped, and was killed
        30 s later."""
        self._stop_requested = self.stop_asked = True
        super()._shutdown()

    def subscribe(self) -> None:
        """RQ's, with a 1 s wait per read (COMMANDS_POLL) instead of 60 s.

        On a stop RQ unsubscribes, then stops the thread. When the thread reads Redis's reply
        to the unsubscription before the stop flag is set (a race the main thread loses on a
        loaded machine), it goes on to wait for a new subscription for the rest of its wait;
        redis-py >= 8.2 joins it with no time limit (RQ's own join gives up after 1 s, but
        comes after): the worker then took up to a minute to exit after SIGTERM."""
        self.log.info("Worker %s: subscribing to channel %s", self.name,
                      self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=COMMANDS_POLL, daemon=True,
            exception_handler=self._pubsub_exception_handler)

    def execute_job(self, job, queue) -> None:
        runtime.current().heartbeat.beat()  # a retired key is dropped before the job uses it
        gc.disable()  # a job's garbage is collected after it, not in pauses during it
        # The job's log lines carry the id of the web request that asked for it.
        token = request_id.set(requested_by(job))
        try:
            super().execute_job(job, queue)
        finally:
            request_id.reset(token)
            gc.enable()
            gc.collect()
        seal_audit(runtime.current())  # a long job does not leave the rows of others unsealed
        resident = resident_memory()
        if self.memory_limit and resident and resident > self.memory_limit:
            log.warning("worker memory %d MiB above the %d MiB limit: restarting",
                        resident >> 20, self.memory_limit >> 20)
            self.outgrown = True
            raise StopRequested  # RQ's loop ends cleanly: the worker deregisters itself

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        rt = runtime.current()
        rt.heartbeat.beat(force=True)
        seal_audit(rt)
        write_audit_checkpoint(rt)
        try:
            sweep(rt, self.connection)
        except redis.RedisError:
            log.warning("sweep skipped: Redis unavailable")
        daily_retention(rt)
        expire_accounts(rt)


def main(settings: Settings | None = None) -> None:
    settings = settings or load_settings(worker=True)
    configure_logging(settings, "worker")
    try:
        _serve(settings)
    # A stop signal while starting, or while RQ was already stopping (to restart): no restart.
    except (KeyboardInterrupt, StopRequested):
        log.info("worker stopped while starting or restarting")
    except SchemaNotCurrentError as exc:  # what to run says it all: no traceback
        log.error("worker not started: %s", exc)
        sys.exit(1)
    else:
        log.info("worker stopped")  # after RQ's "warm shut down requested": the stop's length


def _serve(settings: Settings) -> None:
    rt = runtime.init(settings)
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
    if settings.worker_metrics_address:
        serve_worker_metrics(settings.worker_metrics_address)
    rt.pdf = PdfConverter()  # one resident LibreOffice for the jobs
    try:
        if not rt.pdf.available:
            log.info("LibreOffice not installed: documents are built as .docx only")
        elif not settings.worker_warm_up:
            log.info("no warm-up (ICLI_WORKER_WARM_UP=0): LibreOffice starts with the first PDF")
        else:
            try:
                rt.pdf.start()
            except Exception as exc:
                log.warning("LibreOffice did not start (%s): PDF unavailable",
                            type(exc).__name__)
        rt.heartbeat.converts_pdf = rt.pdf.available  # the pages say whether PDF comes too
        rt.heartbeat.beat(force=True)
        if settings.worker_warm_up:
            warm_up(rt)
        # Sweep at least twice per lease: an abandoned job is taken over soon after it expires.
        # An idle RQ worker waits for a job worker_ttl - 15 s before its next maintenance step.
        interval = max(1, min(SWEEP_INTERVAL, settings.job_lease_seconds // 2))
        worker = DocumentWorker([mail_queue(connection), document_queue(connection)],
                                connection=connection,
                                serializer=JSONSerializer, job_class=AllowlistedJob,
                                maintenance_interval=interval, worker_ttl=interval + 15,
                                log_job_description=False,  # payloads stay out of the logs
                                memory_limit=settings.worker_memory_mb * 2**20)
        worker.work(with_scheduler=True, logging_level=settings.log_level)
    finally:
        rt.pdf.close()
    if worker.restarts:  # the same command again, in this process (supervisors see no exit)
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606
