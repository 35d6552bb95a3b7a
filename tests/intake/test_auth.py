from sqlalchemy import select

from shared.models import AuditEvent, LoginThrottle, User
from tests.factories import PASSWORD
from tests.helpers import csrf_token


def test_login_page_is_french_and_has_a_csrf_token(client, engine):
    page = client.get("/connexion")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Connexion" in body and 'name="csrf_token"' in body
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_user_logs_in_and_out(client, auth, world):
    response = auth.login("facilitator@test.invalid", PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Bonjour Test facilitator" in client.get("/").get_data(as_text=True)
    response = auth.post("/deconnexion")
    assert response.status_code == 302
    assert client.get("/").status_code == 302  # back to the login page


def test_wrong_password_gets_a_french_message_and_is_audited(client, auth, world, db_session):
    response = auth.login("facilitator@test.invalid", "wrong-password-123")
    assert response.status_code == 401
    assert "Adresse e-mail ou mot de passe incorrect." in response.get_data(as_text=True)
    actions = db_session.scalars(select(AuditEvent.action)).all()
    assert "login_failed" in actions


def test_unknown_account_gets_the_same_message(client, auth, world):
    response = auth.login("nobody@test.invalid", PASSWORD)
    assert response.status_code == 401
    assert "Adresse e-mail ou mot de passe incorrect." in response.get_data(as_text=True)


def test_login_without_csrf_token_is_refused_and_logs_nobody_in(client, world):
    response = client.post("/connexion", data={"email": "facilitator@test.invalid",
                                               "password": PASSWORD})
    assert response.status_code == 400
    assert "Formulaire expiré" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_account_is_locked_after_five_failures_even_with_the_right_password(
        client, auth, world, db_session):
    for _ in range(5):
        assert auth.login("referent@test.invalid", "wrong-password-123").status_code == 401
    response = auth.login("referent@test.invalid", PASSWORD)
    assert response.status_code == 401
    assert "Trop de tentatives de connexion" in response.get_data(as_text=True)
    # the counters are keyed by a hash: the e-mail itself is not stored
    keys = db_session.scalars(select(LoginThrottle.key)).all()
    assert keys and not any("referent" in key for key in keys)


def test_address_is_locked_after_twenty_failures_across_accounts(client, auth, world):
    for n in range(20):
        auth.login(f"guess{n}@test.invalid", "wrong-password-123")
    response = auth.login("admin@test.invalid", PASSWORD)
    assert "Trop de tentatives de connexion" in response.get_data(as_text=True)


def test_deactivated_account_cannot_log_in(client, auth, world, db_session):
    user = db_session.scalar(select(User).where(User.email == "director@test.invalid"))
    user.active = False
    db_session.commit()
    response = auth.login("director@test.invalid", PASSWORD)
    assert response.status_code == 401
    assert "désactivé" in response.get_data(as_text=True)


def test_password_is_stored_as_argon2id(world, db_session):
    user = db_session.scalar(select(User).where(User.email == "admin@test.invalid"))
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_user_with_a_temporary_password_must_change_it_first(client, auth, world, db_session):
    user = db_session.scalar(select(User).where(User.email == "facilitator@test.invalid"))
    user.must_change_password = True
    db_session.commit()
    auth.login("facilitator@test.invalid", PASSWORD)
    assert client.get("/seances/").headers["Location"] == "/mot-de-passe"
    token = csrf_token(client, "/mot-de-passe")
    response = client.post("/mot-de-passe", data={
        "csrf_token": token, "current": PASSWORD, "new": "un-nouveau-secret-93",
        "confirm": "un-nouveau-secret-93"})
    assert response.status_code == 302
    assert client.get("/seances/").status_code == 200


def test_weak_new_password_is_refused_in_french(client, auth, world):
    auth.login("admin@test.invalid", PASSWORD)
    token = csrf_token(client, "/mot-de-passe")
    response = client.post("/mot-de-passe", data={
        "csrf_token": token, "current": PASSWORD, "new": "court", "confirm": "court"})
    assert "au moins 12 caractères" in response.get_data(as_text=True)
