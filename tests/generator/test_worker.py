"""The worker's own process life: a stop signal at any moment ends it and what it started."""

import os
import signal
import time

import pytest
from rq import Worker
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from generator.worker import DocumentWorker
from shared.queue import document_queue
from tests.helpers import wait_for


class SignalledWhileStarting(DocumentWorker):
    """Receives SIGTERM right after forking its scheduler, before RQ's handlers are in."""

    def _start_scheduler(self, *args, **kwargs):
        super()._start_scheduler(*args, **kwargs)
        self.started_scheduler = self.scheduler._process
        os.kill(os.getpid(), signal.SIGTERM)


def test_a_stop_signal_while_the_worker_starts_stops_its_scheduler_too(redis):
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # as __main__ does
    worker = SignalledWhileStarting([document_queue(redis)], connection=redis,
                                    serializer=JSONSerializer)
    try:
        with pytest.raises(KeyboardInterrupt):
            worker.work(with_scheduler=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert worker.started_scheduler is not None
    worker.started_scheduler.join(timeout=10)
    assert not worker.started_scheduler.is_alive()  # it would keep the worker from exiting
    assert worker.name not in {w.name for w in Worker.all(connection=redis)}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point
def test_a_stop_signal_landing_in_garbage_collection_still_stops_the_worker(redis):
    """The handler runs inside whatever Python was running: in a ``__del__``, the
    StopRequested it raises is swallowed ("Exception ignored in …"); the loop's flag stays."""
    worker = DocumentWorker([document_queue(redis)], connection=redis,
                            serializer=JSONSerializer)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    class Collected:
        def __del__(self):
            worker.request_stop(signal.SIGTERM, None)  # as if the signal landed here

    try:
        Collected()  # collected at once: its __del__ runs, its exception is swallowed
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert worker._stop_requested  # RQ's loop stops at its next turn


def test_a_worker_asked_to_stop_during_a_job_that_outgrew_its_limit_does_not_restart(redis):
    """SIGTERM while a job runs: RQ waits for the job; the memory check after it then ends
    the loop as « outgrown ». The stop wins: restarting in place ignored it (seen in CI, the
    worker then had to be killed)."""
    worker = DocumentWorker([document_queue(redis)], connection=redis,
                            serializer=JSONSerializer)
    worker.outgrown = True
    assert worker.restarts
    worker.set_state(WorkerStatus.BUSY)  # a job under way: RQ's stop does not raise
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.request_stop(signal.SIGTERM, None)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert not worker.restarts


def test_a_worker_killed_with_sigkill_leaves_no_scheduler_behind(test_env, engine, redis,
                                                                  tmp_path):
    """Its scheduler, an orphan, would keep the scheduler's lock in Redis for ever: no other
    worker could schedule e-mail retries any more."""
    import psutil

    from tests.helpers import reap, start_worker

    worker = start_worker(test_env, redis, tmp_path / "worker.log")
    try:
        scheduler = wait_for(lambda: psutil.Process(worker.pid).children(), timeout=60)[0]
        worker.kill()
    finally:
        reap(worker, 10)
    gone, alive = psutil.wait_procs([scheduler], timeout=10)
    for orphan in alive:  # the failure is reported; the orphan must not take later jobs
        orphan.kill()
    assert gone == [scheduler]


def test_the_commands_thread_stops_at_once_when_it_read_the_unsubscription_first(redis):
    """The race that made a worker take a minute to exit after SIGTERM on a loaded machine:
    RQ unsubscribes, then stops the thread that listens for its commands. When that thread
    read Redis's reply before the stop flag was set, it waited for a new subscription for the
    rest of its poll (60 s in RQ 3.0), and redis-py >= 8.2 joins it with no time limit."""
    worker = DocumentWorker([document_queue(redis)], connection=redis,
                            serializer=JSONSerializer)
    worker.subscribe()
    thread = worker.pubsub_thread
    wait_for(lambda: worker.pubsub.subscribed, timeout=10, interval=0.05)
    worker.pubsub.unsubscribe()  # the thread reads the reply before any stop
    wait_for(lambda: not worker.pubsub.subscribed, timeout=10, interval=0.05)
    started = time.monotonic()
    worker.unsubscribe()
    thread.join(10)
    stopping = time.monotonic() - started
    assert not thread.is_alive()
    assert stopping < 10, f"{stopping:.1f} s"  # about COMMANDS_POLL; 60 s with RQ's own


def test_without_warm_up_a_worker_starts_without_libreoffice_and_still_builds_a_pdf(
        test_env, redis, engine, keyring, world, db_session, tmp_path):
    """ICLI_WORKER_WARM_UP=0 (the tests' default): no LibreOffice until a PDF is asked for."""
    import shutil

    import psutil

    from shared import outbox
    from shared.domain import documents
    from shared.models import DocumentJob, GeneratedDocument
    from tests.helpers import start_worker, stop_worker, wait_for

    if shutil.which("soffice") is None and not os.environ.get("CI"):
        pytest.skip("LibreOffice is not installed")
    worker = start_worker(test_env, redis, tmp_path / "worker.log")
    try:
        def soffice_children():
            return [p for p in psutil.Process(worker.pid).children(recursive=True)
                    if p.name().startswith("soffice")]
        assert soffice_children() == []  # registered with Redis, LibreOffice not started
        job = documents.request_document(db_session, world["meeting"], "agenda", None)
        db_session.commit()
        outbox.send_pending(db_session, redis, keyring)  # as the page does, not the next sweep

        def done():
            db_session.expire_all()
            return db_session.get(DocumentJob, job.id).status == "done"
        wait_for(done, timeout=120)
        document = db_session.query(GeneratedDocument).one()
        assert document.pdf_body  # converted (and sealed: the stored bytes are encrypted)
    finally:
        stop_worker(worker)
