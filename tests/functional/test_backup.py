"""`icli backup` then `icli restore` into a new database: everything decrypts and the audit
chain verifies; the keyring never enters a backup; a damaged backup or a filled target is
refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from shared.keys import record_key_versions
from shared.models import IdentityRecord, Sheet, User
from tests.helpers import file_keys, icli


@pytest.fixture
def empty_database_url(settings, tmp_path):
    """A new, empty database of the same kind as the suite's."""
    if settings.is_sqlite:
        yield f"sqlite:///{tmp_path / 'restored' / 'icli.sqlite3'}"
        return
    given = make_url(settings.database_url)
    target = given.set(database=f"{given.database}_restore")
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    yield target.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = {model.__tablename__: conn.scalar(select(func.count()).select_from(model))
                 for model in (User, Sheet, IdentityRecord)}
    engine.dispose()
    return found


def test_a_backup_restored_into_a_new_database_decrypts_and_verifies(
        settings, test_env, world, db_session, keyring, empty_database_url, tmp_path):
    record_key_versions(db_session, keyring)  # as the first start of any process did
    db_session.commit()
    out = tmp_path / "backup"
    icli(test_env, "backup", "--out", str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    dump = out / manifest["file"]
    assert {"keyring", "keyring.json"}.isdisjoint(p.name for p in out.iterdir())
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in out.iterdir())
    assert {v["chain"] for v in manifest["key_versions"]} >= {"identity", "content", "audit"}
    body = dump.read_bytes()
    assert not [key for key in file_keys(settings.keyring_path) if key.encode() in body]

    restored = icli({**test_env, "ICLI_DATABASE_URL": empty_database_url}, "restore", str(out))
    assert "every value decrypts and the audit chain holds" in restored.stdout
    assert counts(empty_database_url) == counts(settings.database_url)
    assert counts(empty_database_url)["identity_records"] > 0

    again = icli({**test_env, "ICLI_DATABASE_URL": empty_database_url}, "restore", str(out),
                 check=False)
    assert again.returncode != 0 and "not empty" in again.stderr


def test_a_damaged_backup_is_refused_before_anything_is_restored(
        test_env, world, empty_database_url, tmp_path):
    out = tmp_path / "backup"
    icli(test_env, "backup", "--out", str(out))
    dump = out / json.loads((out / "manifest.json").read_text())["file"]
    dump.write_bytes(dump.read_bytes()[:-100])  # truncated on its way to the backup host
    refused = icli({**test_env, "ICLI_DATABASE_URL": empty_database_url}, "restore", str(out),
                   check=False)
    assert refused.returncode != 0 and "does not match its manifest" in refused.stderr
    assert tables(empty_database_url) == []  # nothing restored


def tables(url: str) -> list[str]:
    """The tables a database holds; a SQLite file not created yet holds none."""
    from sqlalchemy import inspect

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database).exists():
        return []
    engine = create_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()
