"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import signal

from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from generator import runtime
from generator.jobs import AllowlistedJob
from generator.worker import DocumentWorker
from shared.queue import DOCUMENTS_QUEUE


class InProcessWorker(SimpleWorker):
    """RQ's in-process worker with the real worker's short wait on its commands channel: a
    burst run ends as soon as its queue is empty, not up to a minute later."""

    subscribe = DocumentWorker.subscribe


def run_queue(settings, redis, queue_name: str = DOCUMENTS_QUEUE) -> None:
    """Run every job waiting on ``queue_name`` in this process, as the worker would; RQ's
    signal handlers are taken out again afterwards (a later stop signal must reach pytest)."""
    runtime.init(settings)
    queue = Queue(queue_name, connection=redis, serializer=JSONSerializer)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        InProcessWorker([queue], connection=redis, serializer=JSONSerializer,
                        job_class=AllowlistedJob).work(burst=True)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
