"""The worker's own process life: a stop signal at any moment ends it and what it started."""

import os
import signal
import time

import pytest
from rq import Worker
from rq.serializers import JSONSerializer

from generator.worker import DocumentWorker
from shared.queue import document_queue
from tests.conftest import wait_for


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
