"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from click.testing import CliRunner
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


@dataclass
class CliResult:
    """What a test reads of an ``icli`` run, whether in this process or in its own."""

    returncode: int
    stdout: str
    stderr: str


def icli(test_env, *args, check: bool = True, process: bool = False) -> CliResult:
    """``icli ARGS`` on the test instance: in this process through Click's CliRunner (the
    usual case, no interpreter start), or as its own process (``process=True``) where the test
    is about the process itself (its start, its signals, what it leaves behind)."""
    if process:
        ran = subprocess.run([sys.executable, "-m", "intake.cli", *args], capture_output=True,
                             text=True, env={**os.environ, **test_env}, timeout=120)
        result = CliResult(ran.returncode, ran.stdout, ran.stderr)
    else:
        from intake.cli import main

        ran = CliRunner(env=test_env).invoke(main, list(args), catch_exceptions=False)
        result = CliResult(ran.exit_code, ran.stdout, ran.stderr)
    if check:
        assert result.returncode == 0, result.stderr
    return result
