"""``icli backup`` and ``icli restore``: the database and its manifest (shared/backup.py),
never the keyring."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from intake.cli.common import load_cli_settings
from shared.db import make_engine


@contextlib.contextmanager
def _database() -> Iterator:
    """The configured database's engine, disposed of at the end; a BackupError becomes the
    command's error."""
    from shared.backup import BackupError

    engine = make_engine(load_cli_settings())
    try:
        yield engine
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


@click.command()
@click.option("--out", "out", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="A new folder: the database and manifest.json go in it.")
def backup(out: Path) -> None:
    """Back up the database while the instance runs (not the keyring: keep it apart)."""
    from shared.backup import backup as write_backup

    with _database() as engine:
        manifest = write_backup(engine, out)
    head = manifest["audit_head"] or {"seq": 0}
    click.echo(f"backup written to {out}: {manifest['file']} (schema "
               f"{manifest['schema_revision']}, {len(manifest['key_versions'])} key "
               f"version(s), audit head at seq {head['seq']}); the keyring is not in it")


@click.command()
@click.argument("source", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.pass_context
def restore(ctx: click.Context, source: Path) -> None:
    """Restore the backup in SOURCE into the configured, empty database; then decrypt every
    value (`icli check`) and verify the audit chain (`icli audit verify`)."""
    from intake.cli.audit_log import audit_verify
    from intake.cli.demo import check
    from shared.backup import restore as load_backup

    with _database() as engine:
        manifest = load_backup(engine, source)
    click.echo(f"restored {manifest['file']} of {manifest['created_at']}; checking it")
    ctx.invoke(check, quiet=True)
    ctx.invoke(audit_verify, checkpoint_file=None)
    click.echo("restore checked: every value decrypts and the audit chain holds")
