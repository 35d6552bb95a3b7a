"""``icli db``: the schema."""

from __future__ import annotations

import click

from intake.cli.common import load_cli_settings
from shared.config import Settings
from shared.db import make_engine, make_session_factory


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations up to the latest version."""
    settings = load_cli_settings()
    upgrade_schema(settings)
    click.echo("database is up to date")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Go back to an older schema REVISION (e.g. 0019): refused when the database holds data
    (every downgrade drops tables or columns; restore a backup instead)."""
    from shared.migrate import DowngradeRefusedError, downgrade

    engine = make_engine(load_cli_settings())
    try:
        downgrade(engine, revision)
    except DowngradeRefusedError as exc:  # raised by the migration environment, before any step
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"database downgraded to {revision}")


def upgrade_schema(settings: Settings) -> None:
    """Migrations, then the default reference data of kinds that have none."""
    from shared.domain.reference import ensure_reference_defaults
    from shared.migrate import upgrade

    engine = make_engine(settings)
    try:
        upgrade(engine)
        with make_session_factory(engine)() as session:
            ensure_reference_defaults(session)
            session.commit()
    finally:
        engine.dispose()


