"""`icli run` on a fresh instance with the embedded defaults, as `make run` starts it."""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.helpers import answers, die_with_parent, free_port, metric_sample

METRICS_TOKEN = "run-metrics-token-" + "t" * 20

# These start `make run`'s own instance (a SQLite file, the bundled Redis) whatever backends
# the suite runs on: the pass on PostgreSQL would repeat them to the letter (a minute).
pytestmark = pytest.mark.skipif(
    os.environ.get("ICLI_DATABASE_URL", "").startswith("postgresql"),
    reason="embedded defaults (SQLite, bundled Redis): run once, in the SQLite pass")


def command_line(process: psutil.Process) -> list[str]:
    """A child's command line; a zombie (exited, not yet reaped) has none."""
    try:
        return process.cmdline()
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return []


@pytest.mark.parametrize("stop", ["sigterm", "ctrl-c"])
def test_icli_run_serves_a_fresh_instance_and_stops_every_process_cleanly(tmp_path, stop):
    """SIGTERM to `icli run` (a service manager), or SIGINT to its whole process group (Ctrl-C
    in a terminal): everything stops, Redis last, with no traceback."""
    instance = Path(tempfile.mkdtemp(prefix="icli-run-"))  # short: unix socket path limit
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICLI_")}
    env["ICLI_INSTANCE"] = str(instance)
    env["ICLI_METRICS_TOKEN"] = METRICS_TOKEN
    env["TMPDIR"] = scratch = tempfile.mkdtemp(prefix="icli-tmp-")  # the PDF profile's parent
    port = free_port()
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "intake.cli", "run", "--port", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True,  # a terminal's foreground group
                               preexec_fn=die_with_parent)
    try:
        started = time.monotonic()
        while not answers(f"http://127.0.0.1:{port}/healthz"):
            assert process.poll() is None, (tmp_path / "run.log").read_text()
            # The web app loads the language model before it forks its workers (--preload)
            assert time.monotonic() - started < 180, "no answer within three minutes"
            time.sleep(0.5)
        for _ in range(20):
            assert answers(f"http://127.0.0.1:{port}/connexion")
        # Both gunicorn processes count into one directory; /metrics sums them.
        scrape = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                        headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        with urllib.request.urlopen(scrape, timeout=10) as answer:  # noqa: S310
            exposition = answer.read().decode()
        assert metric_sample(exposition, "icli_http_requests_total", route="/connexion",
                             method="GET", status="200") == 20
        assert len(list((instance / "metrics").glob("counter_*.db"))) >= 1
        children = psutil.Process(process.pid).children(recursive=True)
        names = " ".join(" ".join(command_line(c)) for c in children)
        assert "redis-server" in names and "generator" in names and "gunicorn" in names
        # The e-mails' links lead to the port served, not to the default one
        workers = [c for c in children if "generator" in command_line(c)[1:3]]
        assert workers and all(w.environ()["ICLI_BASE_URL"] == f"http://127.0.0.1:{port}"
                               for w in workers)

        assert (instance / "keyring.json").stat().st_mode & 0o777 == 0o600
        assert (instance / "icli.sqlite3").exists()
        output = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{port}" in output and "animatrice@icli.example" in output

        if stop == "sigterm":
            process.send_signal(signal.SIGTERM)
        else:
            os.killpg(process.pid, signal.SIGINT)
        assert process.wait(60) == 0
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]
        shutdown = (tmp_path / "run.log").read_text().split("(Ctrl-C to stop)", 1)[1]
        assert "Traceback" not in shutdown and "ConnectionError" not in shutdown, shutdown
        assert list(Path(scratch).glob("icli-pdf-*")) == []  # LibreOffice's profile is gone
    finally:
        with contextlib.suppress(ProcessLookupError):  # what is left of its process group
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        log.close()
        subprocess.run(["rm", "-rf", str(instance), scratch], check=False)


def test_icli_worker_alone_serves_icli_generate_on_the_embedded_defaults(tmp_path):
    """`icli worker` in one terminal, `icli generate` in another, nothing else installed; SIGTERM
    stops the worker and the bundled Redis it started. A session secret exported in that
    terminal never reaches the worker process."""
    import json

    import redis
    from docx import Document
    from rq import Worker

    instance = Path(tempfile.mkdtemp(prefix="icli-wk-"))  # short: unix socket path limit
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICLI_")}
    env["ICLI_INSTANCE"] = str(instance)
    env["ICLI_SECRET_KEY"] = "exported-session-secret-" + "z" * 32

    def icli(*args):
        return subprocess.run([sys.executable, "-m", "intake.cli", *args], env=env,
                              capture_output=True, text=True, timeout=180)

    assert icli("demo", "--password", "demo-password-2026", "--sheets", "6").returncode == 0
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "intake.cli", "worker"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=die_with_parent)
    try:
        connection = redis.Redis(unix_socket_path=str(instance / "redis.sock"))
        started = time.monotonic()
        while True:
            assert process.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() - started < 90, "no worker registered within 90 s"
            with contextlib.suppress(redis.RedisError):
                if Worker.all(connection=connection):
                    break
            time.sleep(0.5)
        connection.close()
        children = psutil.Process(process.pid).children(recursive=True)
        names = " ".join(" ".join(command_line(c)) for c in children)
        assert "redis-server" in names and "generator" in names
        worker = next(c for c in children if "generator" in command_line(c))
        assert not [k for k in worker.environ() if k.startswith("ICLI_SECRET_KEY")]

        sessions = json.loads(icli("meetings", "list", "--json").stdout)
        meeting = next(s for s in sessions if s["state"] == "odj_en_construction")
        out = tmp_path / "ordre-du-jour.docx"
        result = icli("generate", "--meeting", str(meeting["id"]), "--kind", "agenda",
                      "--out", str(out))
        assert result.returncode == 0, result.stderr
        text = "\n".join(p.text for p in Document(str(out)).paragraphs)
        assert "Ordre du jour" in text and meeting["circonscription"] in text

        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]
        assert "Traceback" not in (tmp_path / "worker.log").read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):  # what is left of its process group
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        log.close()
        subprocess.run(["rm", "-rf", str(instance)], check=False)
