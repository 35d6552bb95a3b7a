"""Backups of the database and their restore (``icli backup``, ``icli restore``).

A backup is a folder: the database (SQLite's online backup API, a consistent copy taken while
the instance runs; ``pg_dump --format=custom`` for PostgreSQL) and ``manifest.json``: when,
from which schema revision, the SHA-256 of the dump, the fingerprints of the key versions the
data is sealed under and the audit chain's head. Never the keyring: its copy lives apart
(docs/operations.md), since a backup and its keyring together open everything.

A restore goes into an empty database only, after checking the dump against its manifest;
the command then decrypts every value and verifies the audit chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.engine import make_url

from shared.db import Base
from shared.files import private_dir, write_private
from shared.models import AuditHead, KeyVersionRecord

MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.dump"
FORMAT = 1
# Tables an empty database may hold rows in: what `icli db upgrade` and a first start write.
SEEDED_TABLES = {"alembic_version", "reference_items", "key_versions", "process_heartbeats"}


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why (never any data)."""


def backup(engine: Engine, out: Path) -> dict:
    """Write the database and its manifest into ``out`` (a new or empty folder, 0700)."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: a backup goes into a new folder")
    private_dir(out)
    sqlite = engine.dialect.name == "sqlite"
    dump = out / (SQLITE_FILE if sqlite else POSTGRES_FILE)
    if sqlite:
        _sqlite_copy(Path(engine.url.database), dump)
    else:
        url, environment = _libpq_url(engine)
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
              f"--file={dump}", url], environment)
    os.chmod(dump, 0o600)
    with engine.connect() as conn:
        head = conn.execute(select(AuditHead.seq, AuditHead.mac)).first()
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": engine.dialect.name,
            "file": dump.name,
            "sha256": _sha256(dump),
            "schema_revision": MigrationContext.configure(conn).get_current_revision(),
            "key_versions": [
                {"chain": chain, "version": version, "fingerprint": fingerprint}
                for chain, version, fingerprint in conn.execute(
                    select(KeyVersionRecord.chain, KeyVersionRecord.version,
                           KeyVersionRecord.fingerprint)
                    .order_by(KeyVersionRecord.chain, KeyVersionRecord.version))],
            "audit_head": {"seq": head.seq, "mac": head.mac} if head else None,
        }
    write_private(out / MANIFEST, json.dumps(manifest, indent=2) + "\n", exclusive=True)
    return manifest


def restore(engine: Engine, source: Path) -> dict:
    """Load the backup in ``source`` into the (empty) database of ``engine``."""
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
        dump = source / manifest["file"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{source} holds no readable backup manifest "
                          f"({type(exc).__name__})") from None
    if manifest.get("format") != FORMAT or manifest.get("database") != engine.dialect.name:
        raise BackupError(f"this backup is of a {manifest.get('database')} database "
                          f"(format {manifest.get('format')}); the target is "
                          f"{engine.dialect.name}")
    if not dump.is_file() or _sha256(dump) != manifest.get("sha256"):
        raise BackupError(f"{dump} does not match its manifest (missing, truncated or "
                          "altered): nothing restored")
    if engine.dialect.name == "sqlite":  # a new file, in a folder that may not exist yet
        private_dir(Path(engine.url.database).parent)
    if not _known_revision(manifest.get("schema_revision")):
        raise BackupError(f"this backup's schema ({manifest.get('schema_revision')}) is newer "
                          "than this version of the application: restore it with the version "
                          "that wrote it")
    filled = _filled_tables(engine)
    if filled:
        raise BackupError(f"the target database is not empty ({', '.join(filled[:5])}): a "
                          "restore goes into a new, empty database")
    if engine.dialect.name == "sqlite":
        engine.dispose()
        _sqlite_copy(dump, Path(engine.url.database))
    else:
        url, environment = _libpq_url(engine)
        # One transaction: an error leaves the database as it was (empty), never half loaded.
        _run(["pg_restore", "--no-owner", "--no-privileges", "--clean", "--if-exists",
              "--single-transaction", "--exit-on-error", f"--dbname={url}", str(dump)],
             environment)
    return manifest


def _known_revision(revision: str | None) -> bool:
    from alembic.script import ScriptDirectory

    from shared.migrate import alembic_config

    revisions = {script.revision for script in
                 ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    return revision in revisions


def _filled_tables(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names()) - SEEDED_TABLES
        return sorted(table.name for table in Base.metadata.sorted_tables
                      if table.name in present
                      and conn.scalar(select(func.count()).select_from(table)))


def _sqlite_copy(source: Path, destination: Path) -> None:
    """SQLite's online backup: a consistent copy, even while other connections write."""
    private_dir(destination.parent)
    try:
        with sqlite3.connect(source) as original, sqlite3.connect(destination) as copy:
            original.backup(copy)
        original.close()
        copy.close()
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite copy from {source} to {destination} failed "
                          f"({type(exc).__name__}: {exc})") from None


def _libpq_url(engine: Engine) -> tuple[str, dict[str, str]]:
    """The engine's URL as pg_dump reads it (no driver name), and its environment: a
    password in the URL goes in PGPASSWORD, never on a command line other users can read
    (without one, libpq reads PGPASSFILE, as compose.yaml sets it)."""
    url = make_url(engine.url).set(drivername="postgresql")
    environment = dict(os.environ)
    if url.password:
        environment["PGPASSWORD"] = str(url.password)
    return url.set(password=None).render_as_string(hide_password=False), environment


def _run(command: list[str], environment: dict[str, str]) -> None:
    name = command[0]
    try:
        result = subprocess.run(command, capture_output=True, timeout=3600,
                                env=environment, check=False)
    except FileNotFoundError:
        raise BackupError(f"{name} is not installed (Debian: postgresql-client)") from None
    if result.returncode != 0:  # its messages may quote rows: not repeated here
        raise BackupError(f"{name} failed (exit {result.returncode}); run it by hand, "
                          "against a scratch database, to read its messages")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
