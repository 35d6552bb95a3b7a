"""``icli init``: a production instance's first steps, in order. ``init secrets`` writes the
keyring, the worker's keyring and the random secrets (on the host, before compose can start
anything); ``init admin`` creates the first administrator once the database is migrated."""

from __future__ import annotations

from pathlib import Path

import click

from intake.cli.common import cli_unit_of_work


@click.group("init")
def init_group() -> None:
    """Bootstrap a production instance: its secrets, then its first administrator."""


@init_group.command("secrets")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default="secrets")
def init_secrets(folder: Path) -> None:
    """Write FOLDER/keyring, keyring_worker, secret_key and link_key (mode 0600); refused if
    any of them exists."""
    from shared.bootstrap import SecretsExistError, write_secrets

    try:
        written = write_secrets(folder)
    except SecretsExistError as exc:
        raise click.ClickException(f"refused, nothing written: already there: {exc}") from None
    for path in written:
        click.echo(f"wrote {path} (mode 0600)")
    click.echo(f"Keep a copy of {folder / 'keyring'} apart from the database backups. Add "
               f"{folder}/smtp_url, pgpass and postgres_password (compose.yaml), then "
               "`docker compose up -d` and `icli init admin`.")


@init_group.command("admin")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
def init_admin(email: str, full_name: str) -> None:
    """Create the first administrator, with a one-time password shown once; refused once
    the instance has any account."""
    from shared.domain.users import create_first_administrator

    with cli_unit_of_work() as (session, vault):
        user, password = create_first_administrator(session, vault, email=email,
                                                    full_name=full_name)
    click.echo(f"created administrator {user.id}; one-time password (shown once): {password}")
