"""``icli users``: accounts."""

from __future__ import annotations

import click

from intake.cli.common import audited_session
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
    from shared.domain.users import RoleSpec, create_user, generate_password
    from shared.errors import DomainError

    password = generate_password()
    with audited_session() as (session, record):
        try:
            user = create_user(session, email=email, full_name=full_name, password=password,
                               role=RoleSpec(role, structure_id, circonscription_ids, manager,
                                             institution),
                               must_change_password=True)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        record("user_created", user, fields=[role])
    click.echo(f"created user {user.id}; one-time password (shown once): {password}")


def _user_by_email(session, email: str):
    from sqlalchemy import select

    from shared.domain.users import normalise_email
    from shared.models import User

    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise click.ClickException("no such user")
    return user


@users.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Deactivate an account (it can no longer log in)."""
    from shared.domain.users import set_active

    with audited_session() as (session, record):
        user = _user_by_email(session, email)
        set_active(session, user, False)
        record("user_deactivated", user)
    click.echo(f"user {user.id} deactivated")


@users.command("reset")
@click.argument("email")
def users_reset(email: str) -> None:
    """Give an account a new one-time password and reactivate it."""
    from shared.domain.users import reset_password, set_active

    with audited_session() as (session, record):
        user = _user_by_email(session, email)
        password = reset_password(session, user)
        set_active(session, user, True)
        record("password_reset", user)
    click.echo(f"user {user.id}: one-time password (shown once): {password}")


