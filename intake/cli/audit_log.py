"""``icli audit``: verify the chain, write a checkpoint, re-anchor."""

from __future__ import annotations

from pathlib import Path

import click

from intake.cli.common import checked_keyring, database_session, load_cli_settings
from intake.cli.keys import key_operation
from shared.domain import audit


@click.group("audit")
def audit_group() -> None:
    """The MAC-chained audit trail."""


@audit_group.command("verify")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A signed checkpoint to compare with (default: ICLI_AUDIT_CHECKPOINT_FILE).")
def audit_verify(checkpoint_file: Path | None) -> None:
    """Check the chain, and against the last checkpoint; name the first broken row and exit
    non-zero if it does not hold."""
    from shared import audit_checkpoint

    settings = load_cli_settings()
    keyring = checked_keyring(settings)
    configured = settings.audit_checkpoint_file
    if checkpoint_file is None and configured is not None and configured.is_file():
        checkpoint_file = configured
    with database_session(settings) as session:
        if checkpoint_file is not None:  # first: it names a truncation best
            try:
                problem = audit_checkpoint.compare(
                    session, audit_checkpoint.read(checkpoint_file, keyring))
            except audit_checkpoint.CheckpointError as exc:
                raise click.ClickException(str(exc)) from None
            if problem:
                raise click.ClickException(f"audit chain broken against the checkpoint "
                                           f"{checkpoint_file}: {problem}")
        report = audit.verify_chain(session, keyring)
    if not report.ok:
        at = f" at {report.first_broken_at:%Y-%m-%d %H:%M:%S}" if report.first_broken_at else ""
        row = f"row id={report.first_broken_id}" if report.first_broken_id else "chain"
        raise click.ClickException(f"audit chain broken: {row}{at}: {report.reason} "
                                   f"({report.rows} row(s) checked)")
    for note in report.reanchored:
        click.echo(f"break repaired by an administrator's re-anchor: {note}")
    if report.stale_unsealed:
        click.echo(f"warning: {report.stale_unsealed} row(s) written more than "
                   f"{audit.UNSEALED_LIMIT.total_seconds() / 60:g} min ago are not sealed yet: "
                   "is a worker running?", err=True)
    against = f", consistent with checkpoint {checkpoint_file}" if checkpoint_file else ""
    unsealed = f" ({report.unsealed} not sealed yet)" if report.unsealed else ""
    click.echo(f"audit chain verified: {report.rows} row(s){unsealed}{against}")


@audit_group.command("checkpoint")
@click.option("--out", "destination", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it (default: ICLI_AUDIT_CHECKPOINT_FILE).")
def audit_checkpoint_command(destination: Path | None) -> None:
    """Seal the committed rows, then write a signed checkpoint of the chain's head (the
    worker also does, on a schedule)."""
    from shared import audit_checkpoint

    settings = load_cli_settings()
    destination = destination or settings.audit_checkpoint_file
    if destination is None:
        raise click.ClickException("set ICLI_AUDIT_CHECKPOINT_FILE or give --out")
    keyring = checked_keyring(settings)
    with database_session(settings) as session:
        audit.seal(session, keyring)
        session.commit()
        checkpoint = audit_checkpoint.take(session, keyring)
    try:
        audit_checkpoint.write(destination, checkpoint)
    except OSError as exc:
        raise click.ClickException(f"cannot write {destination}: {exc.strerror}") from None
    click.echo(f"checkpoint of seq {checkpoint.seq} written to {destination}")


@audit_group.command("re-anchor")
@click.option("--reason", required=True,
              help="Why (e.g. the incident: rows written under a wrong keyring).")
def audit_reanchor(reason: str) -> None:
    """Accept, signed and audited, the rows of a break MACed under a wrong audit key."""
    with key_operation() as (_, keyring, session):
        audit.seal(session, keyring)  # the broken rows get their seq first
        anchor = audit.reanchor(session, keyring, audit.CLI, reason)
        session.commit()
    click.echo(f"rows seq {anchor.from_seq}-{anchor.to_seq} re-anchored; `icli audit verify` "
               "reports them as repaired by this re-anchor")


