"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import update

from generator import runtime
from generator.jobs import AllowlistedJob
from generator.worker import DocumentWorker
from intake.cli.common import die_with_parent
from shared.db import Base, make_session_factory, utcnow
from shared.domain import audit, retention
from shared.domain.reference import ensure_reference_defaults
from shared.models import Beneficiary
from shared.queue import DOCUMENTS_QUEUE
from tests.factories import PASSWORD


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


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, url: str) -> str:
    page = client.get(url)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


def logged_in(app, email: str):
    """A test client with that account logged in through the real login form."""
    client = app.test_client()
    token = csrf_token(client, "/connexion")
    response = client.post("/connexion", data={"csrf_token": token, "email": email,
                                                "password": PASSWORD})
    assert response.status_code == 302, email
    return client


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def start_worker(env: dict[str, str], redis, log_path: Path):
    """Start ``python -m generator`` with ``env``; returns once it is registered with Redis.

    Every process a test starts gets ``die_with_parent``: a test run killed halfway leaves
    no worker behind to take the next run's jobs from the same Redis database."""
    import subprocess
    import sys

    from rq import Worker

    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "generator"],
                                   env={**os.environ, **env}, stdout=log,
                                   stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    process.log_path = log_path
    # Ready once registered with Redis (after its keyring, and LibreOffice when installed).
    wait_for(lambda: process.poll() is not None or Worker.all(connection=redis), timeout=180)
    assert process.poll() is None, log_path.read_text()
    return process


def stop_worker(process) -> bool:
    """SIGTERM, then what ``reap`` does; returns whether the worker stopped by itself."""
    process.terminate()
    return reap(process, 30)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 (a server of the tests, on localhost)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - localhost
            return response.status == 200
    except OSError:
        return False


def reap(process, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``process`` to exit; past that, SIGKILL it and every
    process it started, and reap it. Returns whether it exited by itself (a test asserts it
    afterwards). Every test that starts a process ends with this, in a ``finally``: a process
    that outlives its test breaks later ones (ResourceWarning "subprocess … is still
    running", an unknown zombie among pytest's children)."""
    import subprocess

    import psutil

    try:
        process.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        pass
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    process.kill()
    for descendant in descendants:
        try:
            descendant.kill()
        except psutil.Error:
            continue
    process.wait()
    psutil.wait_procs(descendants, timeout=10)
    return False


def empty_database(engine) -> None:
    """Every table emptied, the reference data seeded again: the state a test starts from."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    seed_reference_data(engine)


def seed_reference_data(engine) -> None:
    with make_session_factory(engine)() as session:
        ensure_reference_defaults(session)
        session.commit()


def purge(db_session, vault, sheet) -> None:
    """The retention crypto-shreds the sheet's person (no activity for longer than kept)."""
    db_session.execute(update(Beneficiary).where(Beneficiary.id == sheet.beneficiary_id)
                       .values(last_activity_at=retention.months_ago(utcnow(), 25)))
    retention.run(db_session, vault.keyring, audit.CLI, retention.Policy())
    db_session.expire_all()
    assert sheet.beneficiary.purged_at is not None


class AuthActions:
    def __init__(self, client) -> None:
        self.client = client

    def login(self, email: str, password: str):
        token = csrf_token(self.client, "/connexion")
        return self.client.post("/connexion", data={"csrf_token": token, "email": email,
                                                    "password": password})

    def post(self, url: str, data: dict | None = None, form_url: str | None = None):
        """Post a form with the CSRF token read from ``form_url`` (default: the home page)."""
        token = csrf_token(self.client, form_url or "/")
        return self.client.post(url, data={"csrf_token": token, **(data or {})})
