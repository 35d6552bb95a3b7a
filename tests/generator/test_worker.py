"""The worker's own process life: a stop signal at any moment ends it and what it started."""

import os
import signal

import pytest
from rq import Worker
from rq.serializers import JSONSerializer

from generator.worker import DocumentWorker
from shared.queue import document_queue


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
