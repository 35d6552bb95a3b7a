"""`icli keys retire` succeeds only once no live process holds the retired version, and
`icli keys status` names those that still do (issue 16, item 7). The web app runs in this
test process (create_app, as gunicorn builds it); the CLI is a real subprocess."""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys

import pytest

from intake import create_app
from tests import helpers
from tests.helpers import wait_for

# These tests are about processes (start, signals, what they hold): icli runs as its own.
icli = functools.partial(helpers.icli, process=True)


@pytest.fixture
def promoted(settings, engine, keyring, test_env, tmp_path):
    """A web app on its own keyring whose content chain moved to v2: v1 can be retired."""
    copy = tmp_path / "keyring.json"
    shutil.copy(settings.keyring_path, copy)
    env = {**test_env, "ICLI_KEYRING": str(copy)}
    app = create_app(dataclasses.replace(settings, keyring_path=copy))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # reports content v1
    icli(env, "keys", "add", "--chain", "content")
    client.get("/healthz")  # reloads the file and reports v1 and v2 at once
    icli(env, "keys", "promote", "--chain", "content", "--version", "2")
    icli(env, "keys", "rotate", "--chain", "content")
    yield env, client
    app.extensions["icli"].engine.dispose()
    app.extensions["icli"].redis.close()


def test_retire_names_the_processes_that_still_hold_the_version(promoted):
    env, client = promoted
    holder = f"intake pid {os.getpid()}"
    result = icli(env, "keys", "retire", "--chain", "content", "--version", "1", "--wait", "0",
                  check=False)
    assert result.returncode != 0
    assert "1 live process(es) still hold it" in result.stderr
    assert holder in result.stderr
    assert f"STILL HELD by {holder}" in icli(env, "keys", "status").stdout
    client.get("/healthz")  # its next request reloads the keyring first
    assert "STILL HELD" not in icli(env, "keys", "status").stdout


def test_retire_waits_until_every_live_process_has_dropped_the_version(promoted):
    env, client = promoted
    retire = subprocess.Popen(
        [sys.executable, "-m", "intake.cli", "keys", "retire", "--chain", "content",
         "--version", "1", "--wait", "60"],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The web app keeps serving; retire returns once one of its requests reloaded.
        wait_for(lambda: client.get("/healthz") and retire.poll() is not None, timeout=90)
    finally:
        if retire.poll() is None:
            retire.kill()
        out, err = retire.communicate()
    assert retire.returncode == 0, err
    assert "held by no live process" in out


BEATING_PROCESS = """
import os, signal, sys
from shared.config import load_settings
from shared.db import make_engine, make_session_factory
from shared.heartbeat import Heartbeat
from shared.keys import load_keyring
settings = load_settings()
sessions = make_session_factory(make_engine(settings))
Heartbeat("intake", load_keyring(settings, sessions), sessions).beat()
if sys.argv[1] == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[1] == "exits while its table is locked":  # by another connection, never released
    from sqlalchemy import update
    from shared.models import ProcessHeartbeat
    holder = sessions()
    holder.execute(update(ProcessHeartbeat).values(kind=ProcessHeartbeat.kind))
"""


@pytest.mark.parametrize(("ending", "still_live"), [
    ("exits", 0), ("killed", 1), ("exits while its table is locked", 1)])
def test_a_process_that_exits_normally_stops_counting_as_live_at_once(test_env, engine,
                                                                      ending, still_live):
    """`keys retire` need not wait a minute for a process stopped cleanly; a killed one keeps
    its row until LIVE_FOR has passed (it may as well be hung). A lock held elsewhere does not
    hold up the exit (30 s on SQLite, for ever on PostgreSQL): the row is left then."""
    from shared.db import make_session_factory
    from shared.heartbeat import live_processes

    subprocess.run([sys.executable, "-c", BEATING_PROCESS, ending],
                   env={**os.environ, **test_env}, check=False, timeout=20)
    with make_session_factory(engine)() as session:
        assert len(live_processes(session)) == still_live
