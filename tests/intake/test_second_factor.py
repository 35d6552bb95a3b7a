"""The TOTP second factor of password accounts: mandatory for administrators and the DPO,
optional for the others; recovery codes; rate limiting; an administrator's reset."""

from __future__ import annotations

import html
import re

import pyotp
from sqlalchemy import select

from shared.domain.users import RoleSpec, create_user
from shared.models import AuditEvent, RecordKey, RecoveryCode, SecondFactor, User
from tests.factories import PASSWORD, remember_second_factor, second_factor_code
from tests.helpers import (
    ENROLMENT_SECRET_RE,
    SECOND_FACTOR_CODE_PAGE,
    SECOND_FACTOR_ENROLMENT_PAGE,
    csrf_token,
    icli,
    logged_in,
    sign_in,
)

RECOVERY_CODE_RE = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


def password_step(client, email: str):
    return client.post("/connexion", data={"csrf_token": csrf_token(client, "/connexion"),
                                           "email": email, "password": PASSWORD})


def type_code(client, code: str, page: str = SECOND_FACTOR_CODE_PAGE):
    return client.post(page, data={"csrf_token": csrf_token(client, page), "code": code})


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def logins(db_session) -> list[str]:
    return db_session.scalars(select(AuditEvent.purpose).where(AuditEvent.action == "login")
                              .order_by(AuditEvent.id)).all()


def test_an_administrator_signs_in_with_a_code_after_the_password(client, world, db_session):
    response = password_step(client, "admin@test.invalid")
    assert response.headers["Location"] == SECOND_FACTOR_CODE_PAGE
    assert client.get("/admin/utilisateurs").status_code == 302  # not signed in yet
    assert logins(db_session) == []

    refused = type_code(client, "000000")
    assert refused.status_code == 401
    assert "Code incorrect ou expiré" in text(refused)
    response = type_code(client, second_factor_code("admin@test.invalid"))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/admin/utilisateurs").status_code == 200
    assert logins(db_session) == ["mot de passe + code TOTP"]
    assert db_session.scalars(select(AuditEvent.purpose).where(
        AuditEvent.action == "login_failed")).all() == ["second_factor:InvalidInputError"]


def test_a_code_is_accepted_once(client, world):
    code = second_factor_code("admin@test.invalid")
    password_step(client, "admin@test.invalid")
    assert type_code(client, code).status_code == 302
    client.post("/deconnexion", data={"csrf_token": csrf_token(client, "/")})
    password_step(client, "admin@test.invalid")
    assert type_code(client, code).status_code == 401  # seen: a replay


def test_wrong_codes_lock_the_account_like_wrong_passwords(client, world):
    password_step(client, "dpo@test.invalid")
    for _ in range(5):
        assert type_code(client, "123456").status_code == 401
    response = type_code(client, second_factor_code("dpo@test.invalid"))
    assert response.status_code == 401
    assert "Trop de tentatives de connexion" in text(response)


def test_the_code_step_ends_when_the_account_is_deactivated_meanwhile(client, world,
                                                                      db_session):
    password_step(client, "admin@test.invalid")
    world["users"]["admin"].active = False
    db_session.commit()
    response = type_code(client, second_factor_code("admin@test.invalid"))
    assert response.headers["Location"] == "/connexion"
    assert "saisissez de nouveau votre mot de passe" in text(client.get("/connexion"))


def test_a_new_administrator_enrols_at_first_sign_in_and_keeps_recovery_codes(
        client, world, db_session, vault):
    create_user(db_session, email="nouvel.admin@test.invalid", full_name="Nouvel Admin",
                password=PASSWORD, role=RoleSpec("admin"))
    db_session.commit()
    assert password_step(client, "nouvel.admin@test.invalid").headers["Location"] == \
        SECOND_FACTOR_ENROLMENT_PAGE
    page = client.get(SECOND_FACTOR_ENROLMENT_PAGE)
    body = page.get_data(as_text=True)
    assert "<svg" in body and "<script" not in body.split("</head>", 1)[1]  # inline QR code
    secret = ENROLMENT_SECRET_RE.search(body).group(1)
    assert ENROLMENT_SECRET_RE.search(client.get(SECOND_FACTOR_ENROLMENT_PAGE).get_data(
        as_text=True)).group(1) == secret  # a reload keeps the QR code already scanned
    assert client.get("/").status_code == 302  # not signed in before the first code

    assert type_code(client, "000000", SECOND_FACTOR_ENROLMENT_PAGE).status_code == 200
    remember_second_factor("nouvel.admin@test.invalid", secret)
    shown = type_code(client, second_factor_code("nouvel.admin@test.invalid"),
                      SECOND_FACTOR_ENROLMENT_PAGE)
    codes = RECOVERY_CODE_RE.findall(shown.get_data(as_text=True))
    assert len(codes) == 10 and "Second facteur activé" in text(shown)
    assert client.get("/admin/utilisateurs").status_code == 200

    user = db_session.scalar(select(User).where(User.email == "nouvel.admin@test.invalid"))
    factor = db_session.scalar(select(SecondFactor).where(SecondFactor.user_id == user.id))
    assert secret not in factor.secret and factor.confirmed_at is not None  # sealed
    hashes = db_session.scalars(select(RecoveryCode.code_hash).where(
        RecoveryCode.user_id == user.id)).all()
    assert len(hashes) == 10 and all(h.startswith("$argon2id$") for h in hashes)
    assert not any(code.replace("-", "") in h for code in codes for h in hashes)

    # A lost phone: a recovery code stands in for the code, once.
    client.post("/deconnexion", data={"csrf_token": csrf_token(client, "/")})
    password_step(client, "nouvel.admin@test.invalid")
    assert type_code(client, codes[3].upper()).status_code == 302
    client.post("/deconnexion", data={"csrf_token": csrf_token(client, "/")})
    password_step(client, "nouvel.admin@test.invalid")
    assert type_code(client, codes[3]).status_code == 401
    assert logins(db_session)[-1] == "mot de passe + code de secours"
    assert "Codes de secours restants : 9" in text(logged_in_page(client, user.email))


def logged_in_page(client, email: str):
    type_code(client, second_factor_code(email))
    return client.get("/compte")


def test_a_facilitator_turns_the_second_factor_on_from_the_account_page(client, world):
    assert sign_in(client, "facilitator@test.invalid", PASSWORD).headers["Location"] == "/"
    assert "Non activé" in text(client.get("/compte"))
    page = client.get("/compte/second-facteur").get_data(as_text=True)
    secret = ENROLMENT_SECRET_RE.search(page).group(1)
    shown = client.post("/compte/second-facteur", data={
        "csrf_token": csrf_token(client, "/compte/second-facteur"),
        "code": pyotp.TOTP(secret).now()})
    assert len(RECOVERY_CODE_RE.findall(shown.get_data(as_text=True))) == 10
    client.post("/deconnexion", data={"csrf_token": csrf_token(client, "/")})
    assert password_step(client, "facilitator@test.invalid").headers["Location"] == \
        SECOND_FACTOR_CODE_PAGE


def test_an_administrator_resets_someone_elses_second_factor_audited(app, world, db_session):
    admin = logged_in(app, "admin@test.invalid")
    dpo = world["users"]["dpo"]
    factor = db_session.scalar(select(SecondFactor).where(SecondFactor.user_id == dpo.id))
    factor_id, key_owner = factor.id, factor.uuid
    dpo_client = logged_in(app, "dpo@test.invalid")
    response = admin.post(f"/admin/utilisateurs/{dpo.id}/second-facteur",
                          data={"csrf_token": csrf_token(admin, "/admin/utilisateurs")})
    assert response.headers["Location"] == "/admin/utilisateurs"
    assert "est réinitialisé" in text(admin.get("/admin/utilisateurs"))
    assert dpo_client.get("/dpo/journal").status_code == 302  # its sessions ended
    db_session.expire_all()
    assert db_session.get(SecondFactor, factor_id) is None
    assert db_session.scalars(select(RecordKey).where(
        RecordKey.record_uuid == key_owner)).all() == []  # the secret is shredded
    reset = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "second_factor_reset")).one()
    assert (reset.actor_id, reset.object_ids) == (world["users"]["admin"].id, str(dpo.id))
    assert password_step(app.test_client(), "dpo@test.invalid").headers["Location"] == \
        SECOND_FACTOR_ENROLMENT_PAGE  # it enrols again

    own = admin.post(f"/admin/utilisateurs/{world['users']['admin'].id}/second-facteur",
                     data={"csrf_token": csrf_token(admin, "/admin/utilisateurs")})
    assert "votre propre second facteur" in text(admin.get(own.headers["Location"]))


def test_the_command_line_resets_a_locked_out_administrators_second_factor(test_env, world,
                                                                           db_session):
    result = icli(test_env, "users", "reset-second-factor", "admin@test.invalid")
    assert "second factor reset" in result.stdout
    assert db_session.scalars(select(SecondFactor).where(
        SecondFactor.user_id == world["users"]["admin"].id)).all() == []
    reset = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "second_factor_reset")).one()
    assert reset.actor_label == "cli"
