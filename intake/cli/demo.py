"""``icli demo`` and ``icli check``: a demonstration instance; every protected value read back."""

from __future__ import annotations

from pathlib import Path

import click

from intake.cli.common import (
    checked_keyring,
    cli_unit_of_work,
    database_session,
    ensure_instance_keyring,
    load_cli_settings,
)
from intake.cli.database import upgrade_schema
from shared.config import Settings


@click.command()
@click.option("--people", "people_file", type=click.Path(exists=True, dir_okay=False,
                                                           path_type=Path),
              help="UTF-8 CSV of synthetic identities (see README).")
@click.option("--sheets", default=12, show_default=True, type=click.IntRange(0, 10000))
@click.option("--password", default=None, help="Password of every demo account.")
def demo(people_file: Path | None, sheets: int, password: str | None) -> None:
    """Seed an empty database with demo data; never prints personal data."""
    settings = load_cli_settings()
    ensure_instance_keyring(settings)
    upgrade_schema(settings)
    seed_demo(settings, password=password, people_file=people_file, sheets=sheets)


def seed_demo(settings: Settings, *, password: str | None, people_file: Path | None,
               sheets: int) -> None:
    from shared.demo import read_people_csv, seed_demo
    from shared.passwords import password_problem

    if password is not None and (problem := password_problem(password)):
        raise click.ClickException(f"--password refused: {problem}")
    people = None
    if people_file is not None:
        people, rejected = read_people_csv(people_file)
        for line, reason in rejected:
            click.echo(f"{people_file.name}, line {line}: refused ({reason})", err=True)
        click.echo(f"{len(people)} people imported, {len(rejected)} line(s) refused")
    with cli_unit_of_work(settings) as (session, vault):
        result = seed_demo(session, vault, password=password, people=people, sheets=sheets,
                           index_bits=settings.index_bits)
    click.echo(f"Demo: {result.people} people, {result.sheets} sheets, three meetings.")
    for email, role in result.accounts:
        click.echo(f"  {email:32} {role}")
    if result.password_generated:
        click.echo(f"Password of every demo account (shown once): {result.password}")
    click.echo("Administrators and the DPO enrol a second factor at their first login: scan "
               "its QR code with an authenticator app (README, « Signing in »).")


@click.command()
@click.option("--quiet", is_flag=True, help="Print failures only.")
def check(quiet: bool) -> None:
    """Decrypt every protected value; exit non-zero on any failure (ids only)."""
    from shared.integrity import check_all

    settings = load_cli_settings()
    keyring = checked_keyring(settings)
    with database_session(settings) as session:
        reports = check_all(session, keyring)
        session.commit()
    failures = 0
    for table, report in reports.items():
        if not quiet:
            click.echo(f"{table:22} {report.rows:7} rows {report.values:8} values "
                       f"{len(report.failures):5} failures")
        for row_id, field in report.failures:
            click.echo(f"  FAILED {table} id={row_id} field={field}", err=True)
        failures += len(report.failures)
    if failures:
        raise click.ClickException(f"{failures} protected value(s) failed to decrypt")
    if not quiet:
        click.echo("all protected values decrypt")


