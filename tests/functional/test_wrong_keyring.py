"""A keyring whose key differs from the one the database recorded for the same chain and
version is refused by every process, before it seals or MACs anything (issue 16, item 2)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from intake import create_app
from shared.crypto import KeyMismatchError, KeyRing
from shared.domain import audit
from shared.keys import record_key_versions
from shared.models import AuditEvent, KeyVersionRecord
from tests.helpers import assert_no_key_material, file_keys, icli, replaced


@pytest.fixture
def recorded(db_session, keyring):
    """The database knows the fingerprints of the test keyring (as after any first start)."""
    record_key_versions(db_session, keyring)
    db_session.commit()


def with_versions(source: Path, destination: Path, chain: str, kept: tuple[int, ...],
                  new: tuple[int, ...]) -> Path:
    """A copy of ``source`` whose ``chain`` holds the ``kept`` versions of ``source`` and
    ``new`` versions with random keys, the highest one primary."""
    data = json.loads(source.read_text(encoding="utf-8"))
    entry = data["chains"][chain]
    entry["versions"] = {
        **{str(n): entry["versions"][str(n)] for n in kept},
        **{str(n): {"key": base64.b64encode(secrets.token_bytes(32)).decode(),
                    "created_at": "2026-01-01T00:00:00+00:00"} for n in new}}
    entry["primary"] = max(kept + new)
    destination.write_text(json.dumps(data), encoding="utf-8")
    destination.chmod(0o600)
    return destination


def recorded_versions(db_session, chain: str) -> set[int]:
    db_session.rollback()
    return set(db_session.scalars(select(KeyVersionRecord.version)
                                  .where(KeyVersionRecord.chain == chain)))


def audit_rows(db_session) -> int:
    db_session.rollback()
    return db_session.scalar(select(func.count()).select_from(AuditEvent))


def test_the_web_app_refuses_to_start_with_a_replaced_key(settings, recorded, tmp_path):
    wrong = replaced(settings.keyring_path, tmp_path / "keyring.json", "identity")
    with pytest.raises(KeyMismatchError) as refused:
        create_app(dataclasses.replace(settings, keyring_path=wrong))
    message = str(refused.value)
    assert "identity v1" in message
    assert_no_key_material(message, file_keys(wrong) + file_keys(settings.keyring_path))


def test_a_running_web_app_refuses_to_reload_a_replaced_key(settings, recorded, keyring,
                                                             db_session, tmp_path, capfd):
    copy = tmp_path / "keyring.json"
    shutil.copy(settings.keyring_path, copy)
    app = create_app(dataclasses.replace(settings, keyring_path=copy))
    try:
        ring = app.extensions["icli"].keyring
        replaced(copy, copy, "audit")
        assert app.test_client().get("/healthz").status_code == 200  # it reloads here
        assert ring.secret("audit") == keyring.secret("audit")  # the reload was refused
        assert "keyring not reloaded: keyring refused: audit v1" in capfd.readouterr().err
        audit.record(db_session, ring, audit.CLI, "decrypt", object_type="identity_records",
                     object_ids=[1])
        db_session.commit()
        assert audit.verify_chain(db_session, keyring).ok
    finally:
        app.extensions["icli"].engine.dispose()
        app.extensions["icli"].redis.close()


def test_the_worker_refuses_to_start_with_a_replaced_key(test_env, settings, recorded,
                                                          tmp_path):
    wrong = replaced(settings.keyring_path, tmp_path / "keyring.json", "content")
    result = subprocess.run([sys.executable, "-m", "generator"], capture_output=True, text=True,
                            env={**os.environ, **test_env, "ICLI_KEYRING": str(wrong)},
                            timeout=120)
    assert result.returncode != 0
    assert "keyring refused: content v1" in result.stderr
    assert_no_key_material(result.stdout + result.stderr, file_keys(wrong))


@pytest.mark.parametrize("command", [("check",), ("audit", "verify"), ("retention", "run"),
                                     ("keys", "status")])
def test_a_command_with_a_replaced_key_stops_before_writing(test_env, settings, world,
                                                            recorded, db_session, tmp_path,
                                                            command):
    before = audit_rows(db_session)
    wrong = replaced(settings.keyring_path, tmp_path / "keyring.json", "audit")
    result = icli({**test_env, "ICLI_KEYRING": str(wrong)}, *command, check=False)
    assert result.returncode != 0
    assert "keyring refused: audit v1" in result.stderr
    assert_no_key_material(result.stdout + result.stderr, file_keys(wrong))
    assert audit_rows(db_session) == before
    icli(test_env, "audit", "verify")  # the chain is intact


def test_development_never_creates_a_keyring_for_a_database_that_has_keys(
        test_env, recorded, tmp_path):
    missing = tmp_path / "keyring.json"
    for command in (("check",), ("demo",), ("worker",)):
        # `icli worker` in its own process: should it not refuse, it would serve jobs.
        result = icli({**test_env, "ICLI_KEYRING": str(missing)}, *command, check=False,
                      process=command == ("worker",))
        assert result.returncode != 0
        assert "already holds data under existing keys" in result.stderr
        assert not missing.exists()


def test_a_new_database_still_gets_a_development_keyring(test_env, tmp_path):
    """The refusal above is about the database: a fresh instance still starts by itself."""
    missing = tmp_path / "keyring.json"
    env = {**test_env, "ICLI_KEYRING": str(missing),
           "ICLI_DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}"}
    icli(env, "db", "upgrade")
    result = icli(env, "check")
    assert "all protected values decrypt" in result.stdout
    assert KeyRing.load(missing).chains


def test_a_keyring_sharing_no_version_with_the_database_is_refused(
        test_env, settings, recorded, db_session, tmp_path):
    """Another instance's keyring after its rotations (audit v3/v4 only) against a database
    that recorded audit v1/v2: none of its versions can be compared, so it is refused
    instead of being recorded as the next versions (issue 16 follow-up, review item 1)."""
    grown = with_versions(settings.keyring_path, tmp_path / "grown.json", "audit", (1,), (2,))
    record_key_versions(db_session, KeyRing.load(grown))  # `icli keys add` then a start
    db_session.commit()
    foreign = with_versions(settings.keyring_path, tmp_path / "keyring.json", "audit", (),
                            (3, 4))
    with pytest.raises(KeyMismatchError) as refused:
        create_app(dataclasses.replace(settings, keyring_path=foreign))
    assert "audit v3" in str(refused.value)
    assert_no_key_material(str(refused.value), file_keys(foreign) + file_keys(grown))

    before = audit_rows(db_session)
    result = icli({**test_env, "ICLI_KEYRING": str(foreign)}, "check", check=False)
    assert result.returncode != 0
    assert "keyring refused: audit v3" in result.stderr
    assert_no_key_material(result.stdout + result.stderr, file_keys(foreign))
    assert recorded_versions(db_session, "audit") == {1, 2}
    assert audit_rows(db_session) == before


def test_an_unrecorded_version_below_the_highest_recorded_one_is_refused(
        settings, recorded, db_session, tmp_path):
    """Only a version above every recorded one is new (`icli keys add`); an unknown version
    among the recorded ones belongs to another keyring, even beside a matching version."""
    later = with_versions(settings.keyring_path, tmp_path / "later.json", "content", (1,), (3,))
    record_key_versions(db_session, KeyRing.load(later))
    db_session.commit()
    mixed = with_versions(settings.keyring_path, tmp_path / "mixed.json", "content", (1,), (2,))
    with pytest.raises(KeyMismatchError) as refused:
        record_key_versions(db_session, KeyRing.load(mixed))
    assert "content v2" in str(refused.value)
    assert recorded_versions(db_session, "content") == {1, 3}


def test_a_version_added_above_the_recorded_ones_is_still_recorded(
        settings, recorded, db_session, tmp_path):
    added = with_versions(settings.keyring_path, tmp_path / "keyring.json", "jobs", (1,), (2,))
    app = create_app(dataclasses.replace(settings, keyring_path=added))
    try:
        assert recorded_versions(db_session, "jobs") == {1, 2}
    finally:
        app.extensions["icli"].engine.dispose()
        app.extensions["icli"].redis.close()
