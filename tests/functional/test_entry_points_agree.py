"""The web pages and the ``icli`` commands make the same domain call: they follow the same
rules and write the same audit rows (issue 17). Each rule is tried through every entry point
that offers it, the page and the command, or the page and the domain function itself."""

from __future__ import annotations

import html
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from shared.domain import audit, users
from shared.domain.meetings import create_meeting, plan_meeting, postpone
from shared.encrypted import Vault
from shared.errors import InvalidInputError
from shared.models import AuditEvent, Meeting, User
from tests.helpers import client_as, create_account, csrf_token, flash_text, icli, post, reload

DIRECTOR = "director@test.invalid"


def audit_rows(db_session, action: str) -> list[AuditEvent]:
    db_session.expire_all()
    return list(db_session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.id)))


def admin_post(admin, url: str):
    return admin.post(url, data={"csrf_token": csrf_token(admin, "/admin/utilisateurs")},
                      follow_redirects=True)


def log_in(app, email: str, password: str):
    client = app.test_client()
    return client.post("/connexion", data={"csrf_token": csrf_token(client, "/connexion"),
                                           "email": email, "password": password})


# -- accounts ---------------------------------------------------------------------------------
def test_an_account_created_on_the_page_or_by_the_cli_writes_the_same_audit_row(
        app, world, db_session, test_env):
    admin = client_as(app, "admin")
    create_account(admin, email="page@test.invalid", full_name="Par la page", role="dpo",
                   structure_id="0")
    icli(test_env, "users", "create", "--email", "cli@test.invalid", "--name",
              "Par la commande", "--role", "dpo")
    by_page, by_cli = audit_rows(db_session, "user_created")
    for row, email in ((by_page, "page@test.invalid"), (by_cli, "cli@test.invalid")):
        user = db_session.scalar(select(User).where(User.email == email))
        assert user.must_change_password and user.has_role("dpo")
        assert (row.object_type, row.object_ids, row.fields) == ("users", str(user.id), "dpo")
    assert (by_page.actor_id, by_page.actor_label) == (world["users"]["admin"].id, "user")
    assert (by_cli.actor_id, by_cli.actor_label) == (None, "cli")


@pytest.mark.parametrize("entry_point", ["page", "cli"])
def test_a_password_reset_leaves_a_deactivated_account_deactivated(
        app, world, db_session, test_env, entry_point):
    """A reset answers a forgotten password; reactivating an account someone deactivated
    (a departure, a suspension) is its own act, on the page as in the CLI."""
    director = world["users"]["director"]
    admin = client_as(app, "admin")
    if entry_point == "page":
        admin_post(admin, f"/admin/utilisateurs/{director.id}/desactiver")
        page = admin_post(admin, f"/admin/utilisateurs/{director.id}/reinitialiser")
        body = page.get_data(as_text=True)
        password = body.split("<code>", 1)[1].split("</code>", 1)[0]
        assert "Ce compte reste désactivé" in body
    else:
        icli(test_env, "users", "deactivate", DIRECTOR)
        reset = icli(test_env, "users", "reset", DIRECTOR)
        password = reset.stdout.strip().splitlines()[0].rsplit(" ", 1)[1]
        assert "stays deactivated" in reset.stderr
    assert reload(db_session, User, director.id).active is False
    (row,) = audit_rows(db_session, "password_reset")
    assert (row.object_type, row.object_ids) == ("users", str(director.id))
    refused = log_in(app, DIRECTOR, password)
    assert refused.status_code == 401 and "désactivé" in refused.get_data(as_text=True)

    # Reactivated explicitly, the account opens with the password of the reset.
    if entry_point == "page":
        admin_post(admin, f"/admin/utilisateurs/{director.id}/activer")
    else:
        icli(test_env, "users", "activate", DIRECTOR)
    assert reload(db_session, User, director.id).active is True
    assert [r.object_ids for r in audit_rows(db_session, "user_activated")] == [
        str(director.id)]
    assert log_in(app, DIRECTOR, password).status_code == 302


def test_nobody_deactivates_their_own_account_on_the_page_nor_through_the_domain(
        app, world, db_session, keyring):
    admin_user = world["users"]["admin"]
    page = admin_post(client_as(app, "admin"), f"/admin/utilisateurs/{admin_user.id}/desactiver")
    assert "Vous ne pouvez pas désactiver votre propre compte." in flash_text(page)
    assert reload(db_session, User, admin_user.id).active is True
    assert audit_rows(db_session, "user_deactivated") == []
    as_admin = Vault(db_session, keyring, audit.Actor(admin_user.id))
    with pytest.raises(InvalidInputError, match="votre propre compte"):
        users.set_active(db_session, as_admin, admin_user, False)
    db_session.rollback()
    # Another administrator's account, or the operator at the console, may be deactivated.
    users.set_active(db_session, as_admin, world["users"]["director"], False)
    assert [r.actor_id for r in audit_rows(db_session, "user_deactivated")] == [admin_user.id]


def test_an_unknown_account_is_refused_by_the_cli_in_french(test_env, world):
    result = icli(test_env, "users", "reset", "personne@test.invalid", check=False)
    assert result.returncode == 1 and "Aucun compte avec cette adresse" in result.stderr


# -- meetings ---------------------------------------------------------------------------------
def test_a_meeting_cannot_be_planned_in_the_past_on_the_page_nor_in_the_domain(
        app, world, db_session, vault):
    north = world["north"]
    yesterday = date.today() - timedelta(days=1)
    before = db_session.scalars(select(Meeting.id)).all()
    facilitator = client_as(app, "facilitator")
    page = post(facilitator, "/seances/", {"circonscription_id": str(north.id),
                                           "day": yesterday.isoformat(), "at": "14:00",
                                           "place": "Salle 2"})
    assert "Une séance ne peut pas être planifiée dans le passé." in flash_text(page)
    assert db_session.scalars(select(Meeting.id)).all() == before
    for create in (create_meeting, lambda *args: plan_meeting(db_session, vault, *args[1:])):
        with pytest.raises(InvalidInputError, match="dans le passé"):
            create(db_session, north, datetime.combine(yesterday, time(14)), "Salle 2")
    # Today is not the past; the page plans it and audits it.
    page = post(facilitator, "/seances/", {"circonscription_id": str(north.id),
                                           "day": date.today().isoformat(), "at": "18:00",
                                           "place": "Salle 2"})
    assert "Séance planifiée." in flash_text(page)
    assert len(audit_rows(db_session, "meeting_created")) == 1


def test_a_meeting_cannot_be_postponed_to_the_past_on_the_page_nor_in_the_domain(
        app, world, db_session, vault):
    meeting = world["meeting"]
    yesterday = date.today() - timedelta(days=1)
    page = post(client_as(app, "facilitator"), f"/seances/{meeting.id}/reporter",
                {"day": yesterday.isoformat(), "at": "14:00", "reason": "Salle indisponible"},
                f"/seances/{meeting.id}")
    assert "qu'à une date à venir" in html.unescape(flash_text(page))
    assert reload(db_session, Meeting, meeting.id).postponed_to_id is None
    with pytest.raises(InvalidInputError, match="qu'à une date à venir"):
        postpone(db_session, vault, meeting, datetime.combine(yesterday, time(14)),
                 "Salle indisponible")
