"""`icli keys rotate` killed with SIGKILL at 20 random moments beside live traffic."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from shared.crypto import KeyRing
from shared.demo import demo_values
from shared.domain import audit, rotation
from shared.domain.sheets import read_values, start_sheet, write_values
from shared.encrypted import Vault
from shared.models import KeyRotation, Sheet
from tests import helpers
from tests.factories import canary_identity, reference_data
from tests.helpers import reap, wait_for

# Each with an identity and a content data key: 720 keys to rewrap, in batches of 5. Each
# run killed has rewrapped one or two batches: the rotation is far from over at the last kill.
# Twelve kills at random moments of the batches (twenty, over 1,200 keys, doubled the time
# this test took of the suite).
PEOPLE = 360
KILLS = 12

# These tests are about processes (start, signals, what they hold): icli runs as its own.
icli = functools.partial(helpers.icli, process=True)


@pytest.fixture
def ring_env(tmp_path, test_env):
    """This test's own keyring (the suite's shared one is never edited)."""
    path = tmp_path / "keyring.json"
    KeyRing.create_file(path)
    return path, {**test_env, "ICLI_KEYRING": str(path)}


def person(n: int):
    """Distinct people: names that differ by letters (normalisation drops digits)."""
    letters = "".join(chr(ord("a") + int(d)) for d in f"{n:04d}")
    return dataclasses.replace(canary_identity(n), nom=f"Zyxcanari{letters}")


def seed(db_session, keyring) -> list[int]:
    vault = Vault(db_session, keyring, audit.CLI)
    _north, _south, structures = reference_data(db_session)
    ids = []
    for n in range(PEOPLE):
        sheet = start_sheet(db_session, vault, structure=structures["ssd"], author_id=None,
                            identity=person(n)).sheet
        write_values(vault, sheet, demo_values(n))
        ids.append(sheet.id)
        if n % 120 == 119:
            db_session.commit()
            vault = Vault(db_session, keyring, audit.CLI)
    db_session.commit()
    return ids


def progress(db_session) -> int:
    """Rows rewrapped so far, by the checkpoints (committed with each batch)."""
    db_session.expire_all()
    done = sum(r.done for r in db_session.scalars(select(KeyRotation)))
    db_session.commit()
    return done


def test_a_rotation_killed_a_dozen_times_loses_nothing(db_session, ring_env, tmp_path):
    path, env = ring_env
    keyring = KeyRing.load(path)
    sheet_ids = seed(db_session, keyring)
    stop, report = tmp_path / "stop", tmp_path / "traffic.json"
    traffic = subprocess.Popen(
        [sys.executable, "-m", "tests.functional.sheet_traffic", str(stop), str(report),
         *map(str, sheet_ids[:40])], env={**os.environ, **env})
    rotate = None
    try:
        for chain in ("identity", "content"):
            icli(env, "keys", "add", "--chain", chain)

        def traffic_holds_v2():  # the live process reloaded the keyring: promote may go
            status = json.loads(icli(env, "keys", "status", "--json").stdout)
            return all(status["chains"][c]["versions"][-1]["held_by"]
                       for c in ("identity", "content"))

        wait_for(traffic_holds_v2, timeout=60)
        for chain in ("identity", "content"):
            icli(env, "keys", "promote", "--chain", chain, "--version", "2")

        seed_value = random.randrange(10**6)
        chooser = random.Random(seed_value)
        command = [sys.executable, "-m", "intake.cli", "keys", "rotate", "--chain", "identity",
                   "--chain", "content", "--batch", "5", "--pause", "0.02"]
        for kill in range(KILLS):
            done = progress(db_session)
            rotate = subprocess.Popen(command, env={**os.environ, **env},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Once this run has committed a batch, at a random moment within the next ones
            wait_for(lambda d=done, r=rotate: progress(db_session) > d or r.poll() is not None,
                     timeout=60, interval=0.01)
            time.sleep(chooser.uniform(0, 0.03))
            assert rotate.poll() is None, f"the rotation ended before kill {kill + 1} " \
                                          f"(seed {seed_value}): make it longer"
            rotate.send_signal(signal.SIGKILL)
            assert rotate.wait() == -signal.SIGKILL
        finished = icli(env, "keys", "rotate", "--batch", "20")
        assert "moved to v2" in finished.stdout
    finally:
        if rotate is not None and rotate.poll() is None:  # a wait above failed
            rotate.kill()
            rotate.wait()
        stop.touch()
        stopped = reap(traffic, 60)
    assert stopped and traffic.returncode == 0

    counts = json.loads(report.read_text())
    assert counts["failures"] == 0 and counts["reads"] > 50 and counts["edits"] > 20, counts
    db_session.expire_all()
    for chain in ("identity", "content"):  # no row left on the old version
        assert set(rotation.rows_by_version(db_session, chain)) == {2}
    assert {r.status for r in db_session.scalars(select(KeyRotation))} == {"done"}

    # No edit lost: each sheet holds the last edit the traffic committed to it
    last = {}
    for line in report.with_suffix(".edits").read_text().splitlines():
        sheet_id, number = line.split(",")
        last[int(sheet_id)] = int(number)
    keyring.refresh()
    vault = Vault(db_session, keyring, audit.CLI)
    for sheet_id, number in last.items():
        values = read_values(vault, db_session.get(Sheet, sheet_id), purpose="test")
        assert values["parcours"] == f"édition {number}"
    db_session.commit()

    for chain in ("identity", "content"):
        icli(env, "keys", "retire", "--chain", chain, "--version", "1")
    assert icli(env, "check").returncode == 0
    held = json.loads(path.read_text())["chains"]
    assert list(held["identity"]["versions"]) == ["2"] == list(held["content"]["versions"])
