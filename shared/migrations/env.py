"""Alembic environment: the engine comes from the caller (shared.migrate) or Settings.

Every downgrade drops tables or columns: one that would run on a database holding data is
refused before any step runs (an operator who wants an older version restores the backup
taken before the upgrade, docs/operations.md).
"""

from __future__ import annotations

import os

from alembic import context
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

import shared.models  # noqa: F401  (registers every table)
from shared.config import load_settings
from shared.db import Base, make_engine
from shared.migrate import DowngradeRefusedError

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(load_settings())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


# What a downgrade may drop without losing anything a user entered: the default reference
# lists (seeded again by `icli db upgrade`), key fingerprints (recorded again from the
# keyring), process heartbeats.
REBUILT_TABLES = {"alembic_version", "reference_items", "key_versions", "process_heartbeats"}
# Set to "yes" to downgrade all the same (a test database, an operator who knows).
DATA_LOSS_CONSENT = "ICLI_DOWNGRADE_DESTROYS_DATA"


def _refuse_downgrade_over_data(connection) -> None:
    target = context.get_revision_argument()
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None or os.environ.get(DATA_LOSS_CONSENT) == "yes":
        return
    script = ScriptDirectory.from_config(config)
    below = {revision.revision for revision in script.walk_revisions("base", current)}
    if target not in (None, "base") and not str(target).startswith("-"):
        try:  # a revision given by a prefix of its id, or with Alembic's branch syntax
            target = script.get_revision(target).revision
        except Exception:  # unknown: Alembic refuses it itself, before any step
            return
    downgrade = (target in (None, "base") or str(target).startswith("-")  # None: base
                 or (target in below and target != current))
    if not downgrade:
        return
    names = set(inspect(connection).get_table_names()) - REBUILT_TABLES
    filled = sorted(table.name for table in target_metadata.sorted_tables if table.name in names
                    and connection.scalar(select(func.count()).select_from(table)))
    if filled:
        raise DowngradeRefusedError(
            f"refused: downgrading from {current} to {target} drops tables and columns, and "
            f"this database holds data ({', '.join(filled[:5])}{'…' if len(filled) > 5 else ''}"
            f"). Restore the backup taken before the upgrade instead (or set "
            f"{DATA_LOSS_CONSENT}=yes on a database you can lose).")


def _run(connection) -> None:
    _refuse_downgrade_over_data(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
