"""``icli retention``: the purge."""

from __future__ import annotations

import click

from intake.cli.common import checked_keyring, database_session, load_cli_settings
from shared.domain import audit


@click.group()
def retention() -> None:
    """RGPD retention: crypto-shredding of data past its retention period."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="List what would go (ids and references only).")
def retention_run(dry_run: bool) -> None:
    """Purge what is past its retention (ICLI_RETENTION_* settings); the worker runs it daily."""
    from shared.domain import retention as policy_module

    settings = load_cli_settings()
    keyring = checked_keyring(settings)
    with database_session(settings) as session:
        try:
            report = policy_module.run(session, keyring, audit.CLI,
                                       policy_module.Policy.from_settings(settings),
                                       dry_run=dry_run)
        except audit.ChainBrokenError as exc:
            raise click.ClickException(f"{exc}: run `icli audit verify`; nothing purged") from None
        session.commit()
    verb = "would purge" if dry_run else "purged"
    for person in report.people:
        click.echo(f"{verb} beneficiary {person.beneficiary_id} "
                   f"({policy_module.REASONS[person.reason]}): "
                   f"{', '.join(person.sheet_references) or 'no sheet'}")
    if report.dossier_ids:
        click.echo(f"{verb} session dossiers: {', '.join(map(str, report.dossier_ids))}")
    click.echo(f"{verb}: {len(report.people)} person(s), {len(report.dossier_ids)} dossier(s), "
               f"{report.audit_rows} audit row(s)")


