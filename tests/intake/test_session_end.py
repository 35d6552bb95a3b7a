"""Logout, password changes and (de)activation end every session of the account, a cookie
copied beforehand included (issue 16, item 4)."""

from __future__ import annotations

import pytest

from shared.models import User
from tests.factories import PASSWORD, canary_identity, make_sheet
from tests.helpers import csrf_token, icli, logged_in

REFERENT = "referent@test.invalid"
NEW_PASSWORD = "Un-nouveau-mot-de-passe-2026"


@pytest.fixture
def sheet(world, db_session, vault):
    made = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(7),
                      author_id=world["users"]["referent"].id)
    db_session.commit()
    return made


def copied_cookie(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def opens(client, sheet) -> bool:
    response = client.get(f"/fiches/{sheet.id}")
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/connexion")
        return False
    assert response.status_code == 200
    return True


def test_a_cookie_copied_before_logout_no_longer_opens_a_sheet(app, sheet):
    client = logged_in(app, REFERENT)
    copy = copied_cookie(app, client)
    assert opens(copy, sheet)  # the copy is a working session until the logout
    client.post("/deconnexion", data={"csrf_token": csrf_token(client, "/")})
    assert not opens(copy, sheet)
    assert not opens(client, sheet)


def test_logout_ends_the_other_sessions_of_the_account(app, sheet):
    office, laptop = logged_in(app, REFERENT), logged_in(app, REFERENT)
    laptop.post("/deconnexion", data={"csrf_token": csrf_token(laptop, "/")})
    assert not opens(office, sheet)


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app, sheet):
    client, elsewhere = logged_in(app, REFERENT), logged_in(app, REFERENT)
    copy = copied_cookie(app, client)
    response = client.post("/mot-de-passe", data={
        "csrf_token": csrf_token(client, "/mot-de-passe"), "current": PASSWORD,
        "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert opens(client, sheet)
    assert not opens(elsewhere, sheet)
    assert not opens(copy, sheet)


def test_a_deactivation_ends_the_sessions_and_a_reactivation_does_not_revive_them(
        app, sheet, world):
    client = logged_in(app, REFERENT)
    copy = copied_cookie(app, client)
    admin = logged_in(app, "admin@test.invalid")
    referent_id = world["users"]["referent"].id
    for action in ("desactiver", "activer"):
        admin.post(f"/admin/utilisateurs/{referent_id}/{action}",
                   data={"csrf_token": csrf_token(admin, "/admin/utilisateurs")})
    assert not opens(client, sheet)
    assert not opens(copy, sheet)


def test_a_password_reset_from_the_cli_ends_the_sessions(app, sheet, test_env):
    client = logged_in(app, REFERENT)
    icli(test_env, "users", "reset", REFERENT)
    assert not opens(client, sheet)


def test_a_cookie_naming_another_session_version_opens_nothing(app, sheet, db_session):
    # A cookie of the former format (the account id alone) or a guessed version is refused.
    client = logged_in(app, REFERENT)
    user = db_session.query(User).filter_by(email=REFERENT).one()
    for forged in (str(user.id), f"{user.id}:{user.session_version + 1}"):
        with client.session_transaction() as cookie:
            cookie["_user_id"] = forged
        assert not opens(client, sheet)
