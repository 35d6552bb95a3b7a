"""Apply and inspect Alembic migrations from code (``icli db upgrade``/``downgrade``, tests)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class DowngradeRefusedError(RuntimeError):
    """A downgrade would drop tables or columns of a database that holds data."""


class SchemaNotCurrentError(RuntimeError):
    """The database's schema is not the one this code was written for."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to run on every start."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Bring the database down to ``revision``: refused, before any step, when the database
    holds data (shared/migrations/env.py)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def require_current_schema(engine: Engine) -> None:
    """Refuse to serve a database whose schema is not this code's: a new database (no schema
    yet) or one the last upgrade did not reach would fail later, on a user's click or in the
    middle of a job, with an SQL error; the message says what to run."""
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    expected = _code_heads()
    if current != expected:
        raise SchemaNotCurrentError(
            f"the database schema is at {', '.join(sorted(current)) or 'nothing (new database)'}"
            f", this code needs {', '.join(sorted(expected))}: run `icli db upgrade` first")


@functools.cache
def _code_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())
