"""``icli users``: accounts. Each command is one call of ``shared.domain.users``, which
writes the audit row, the same as the admin page's."""

from __future__ import annotations

from pathlib import Path

import click

from intake.cli.common import cli_unit_of_work
from shared.domain.account_import import KINDS
from shared.models.user import ROLES


@click.group()
def users() -> None:
    """Accounts."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
@click.option("--role", type=click.Choice(sorted(ROLES)), required=True)
@click.option("--structure", "structure_id", type=int, help="Structure id (referents).")
@click.option("--circonscription", "circonscription_ids", type=int, multiple=True,
              help="Circonscription id (facilitators; repeat for several).")
@click.option("--manager", is_flag=True, help="Referent who sees all the structure's sheets.")
@click.option("--institution", type=click.Choice(["departement", "france_travail"]),
              help="Institution a director signs the minutes for.")
def users_create(email: str, full_name: str, role: str, structure_id: int | None,
                 circonscription_ids: tuple[int, ...], manager: bool,
                 institution: str | None) -> None:
    """Create an account with a one-time password, to change at first login."""
    from shared.domain.users import RoleSpec, create_account

    with cli_unit_of_work() as (session, vault):
        user, password = create_account(
            session, vault, email=email, full_name=full_name,
            role=RoleSpec(role, structure_id, circonscription_ids, manager, institution))
    click.echo(f"created user {user.id}; one-time password (shown once): {password}")


@users.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Deactivate an account (it can no longer log in; its sessions end)."""
    from shared.domain.users import set_active, user_by_email

    with cli_unit_of_work() as (session, vault):
        user = user_by_email(session, email)
        set_active(session, vault, user, False)
    click.echo(f"user {user.id} deactivated")


@users.command("activate")
@click.argument("email")
def users_activate(email: str) -> None:
    """Reactivate a deactivated account (its password is unchanged: see `reset`)."""
    from shared.domain.users import set_active, user_by_email

    with cli_unit_of_work() as (session, vault):
        user = user_by_email(session, email)
        set_active(session, vault, user, True)
    click.echo(f"user {user.id} reactivated")


@users.command("reset")
@click.argument("email")
def users_reset(email: str) -> None:
    """Give an account a new one-time password. A deactivated account stays deactivated:
    reactivate it with `activate`."""
    from shared.domain.users import reset_password, user_by_email

    with cli_unit_of_work() as (session, vault):
        user = user_by_email(session, email)
        password = reset_password(session, vault, user)
    click.echo(f"user {user.id}: one-time password (shown once): {password}")
    if not user.active:
        click.echo(f"the account stays deactivated: `icli users activate {user.email}` "
                   "reactivates it", err=True)


@users.command("import")
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--apply", is_flag=True, help="Write the changes (default: a dry run).")
def users_import(kind: str, path: Path, apply: bool) -> None:
    """Import a CSV file of circonscriptions, structures, accounts or members: the admin
    page's import (all or nothing, errors by line number)."""
    from shared.domain.account_import import import_csv

    with cli_unit_of_work() as (session, vault):
        report = import_csv(session, vault, kind, path.read_bytes(), dry_run=not apply)
    for change in report.changes:
        click.echo(f"line {change.line}: {change.action} {change.key} "
                   f"{' '.join(change.fields)}".rstrip())
    for message in report.errors:
        click.echo(message, err=True)
    if report.error_count:
        raise click.ClickException(f"{report.error_count} erreur(s) : rien n'a été "
                                   "enregistré.")
    click.echo(f"{report.rows} line(s), {len(report.changes)} "
               + ("applied" if report.applied else "to apply (dry run)" if not apply
                  else "changed: nothing to apply"))


@users.command("reset-second-factor")
@click.argument("email")
def users_reset_second_factor(email: str) -> None:
    """Take the second factor off an account (a lost phone, no recovery code left; the only
    administrator locked out): it enrols a new one at its next login. Audited."""
    from shared.domain.second_factor import reset
    from shared.domain.users import user_by_email

    with cli_unit_of_work() as (session, vault):
        user = user_by_email(session, email)
        reset(session, vault, user)
    click.echo(f"user {user.id}: second factor reset; a new one is enrolled at the next login")
