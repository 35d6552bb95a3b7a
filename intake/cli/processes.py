"""``icli run``, ``icli web``, ``icli worker``: the instance's processes, supervised."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import click

from intake.cli.common import (
    DEFAULT_PORT,
    WORKER_COMMAND,
    database_session,
    ensure_instance_keyring,
    load_cli_settings,
    outside_the_terminal_group,
    spawn,
)
from intake.cli.database import upgrade_schema
from intake.cli.demo import seed_demo
from shared.config import Settings
from shared.metrics import MULTIPROCESS_VARIABLE


def _prepare(settings: Settings) -> None:
    """First run: keyring (development only), schema, demo data when the database is empty."""
    ensure_instance_keyring(settings)
    upgrade_schema(settings)
    from shared.demo import database_is_empty

    with database_session(settings) as session:
        empty = database_is_empty(session)
    if empty:
        click.echo("Empty database: seeding demo data (synthetic people only).")
        seed_demo(settings, password=None, people_file=None, sheets=12)


def _start_bundled_redis(settings: Settings) -> subprocess.Popen | None:
    from shared.redis_server import bundled_redis_running, start_bundled_redis

    if not settings.uses_bundled_redis or bundled_redis_running(settings):
        return None
    return start_bundled_redis(settings.bundled_redis_socket, settings.instance / "redis",
                               preexec_fn=outside_the_terminal_group)


def _gunicorn_args(port: int, host: str = "127.0.0.1") -> list[str]:
    # No control socket: gunicorn would put it in $HOME, one path for every instance of the
    # machine (two instances, or the tests' servers, would unlink each other's).
    # No gunicorn access log: the app writes its own (intake/observability.py), with the
    # time, the route's rule and the request id.
    # --graceful-timeout under _stop_all's 20 s: a web process that does not stop in time is
    # killed by its master, which then exits by itself. Past 20 s _stop_all kills the master,
    # and would leave that process behind, serving nobody (seen once under heavy load).
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", "2",
            "--threads", "4", "--preload", "--no-control-socket", "--graceful-timeout", "10",
            "intake.wsgi:app"]


def _share_metrics(settings: Settings) -> None:
    """The processes started next write their counters into one directory, which /metrics
    sums (prometheus-client's multiprocess mode: gunicorn has two web processes). Emptied at
    each start: the files of processes that are gone would count twice. An operator's own
    PROMETHEUS_MULTIPROC_DIR is left as it is."""
    if MULTIPROCESS_VARIABLE in os.environ:
        return
    directory = settings.instance / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)  # inherited by spawn()'s children


@click.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="HTTP port of the web app.")
def run(port: int) -> None:
    """Everything on one machine: Redis (bundled), one worker and the web app."""
    if not os.environ.get("ICLI_BASE_URL"):
        # The links of the e-mails the worker sends lead to this port (inherited by spawn()).
        os.environ["ICLI_BASE_URL"] = f"http://127.0.0.1:{port}"
    settings = load_cli_settings()
    _prepare(settings)

    def started() -> None:
        click.echo(f"\nICL-I is running on http://127.0.0.1:{port}  (Ctrl-C to stop)")
        _print_accounts(settings)

    _share_metrics(settings)
    _supervise(settings, [WORKER_COMMAND, _gunicorn_args(port)], started)


def _supervise(settings: Settings, commands: list[list[str]],
               started: Callable[[], None] | None = None) -> None:
    """The bundled Redis (when used and not running yet) and ``commands``, until SIGTERM or
    Ctrl-C, or until one of them stops: then every other one is stopped too, Redis last, and
    the command fails (a web app that could not bind its port, a Redis that died)."""
    stopping = False

    def stop(_signum=None, _frame=None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    processes: list[subprocess.Popen] = []
    redis_process = None
    try:
        redis_process = _start_bundled_redis(settings)
        for command in commands:
            processes.append(spawn(command))
        if started is not None:
            started()
        watched = [*processes, *([redis_process] if redis_process else [])]
        while not stopping and all(p.poll() is None for p in watched):
            time.sleep(0.2)
    finally:
        if redis_process is not None:
            processes.append(redis_process)  # stopped last: the others use it
        _stop_all(processes)
    if not stopping:
        raise click.ClickException("a process of the instance stopped; everything was shut down")


def _stop_all(processes: list[subprocess.Popen], timeout: float = 20) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _print_accounts(settings: Settings) -> None:
    from sqlalchemy import select

    from shared.models import User

    with database_session(settings) as session:
        accounts = session.scalars(select(User).where(User.email.like("%@icli.example"))).all()
        if accounts:
            click.echo("Demo accounts (password printed when the demo was seeded):")
            for user in accounts:
                click.echo(f"  {user.email:32} {', '.join(user.role_labels)}")


@click.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def web(port: int, host: str) -> None:
    """The web app alone (gunicorn), with the bundled Redis when it is used."""
    settings = load_cli_settings()
    ensure_instance_keyring(settings)
    _share_metrics(settings)
    _supervise(settings, [_gunicorn_args(port, host)])


@click.command()
def worker() -> None:
    """The document worker alone (python -m generator), with the bundled Redis when used."""
    settings = load_cli_settings(worker=True)  # production: the worker starts without the secret
    ensure_instance_keyring(settings)
    _supervise(settings, [WORKER_COMMAND])


