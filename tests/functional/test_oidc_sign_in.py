"""Signing in through an OpenID Connect provider: the tests' provider runs as its own process
(tests/oidc_provider.py, Authlib's server components) and the app talks to it over HTTP. The
browser drives the same round trip in tests/browser/test_oidc_sign_in.py; here the refusals
are driven over HTTP, which is faster."""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import select

from shared.models import AuditEvent, OidcLink, User
from tests.factories import enrol_second_factor
from tests.helpers import OIDC_SECOND_FACTOR_ACR, csrf_token


def start(client, issuer: str) -> dict[str, str]:
    """« Se connecter avec … »: the app sends the browser to the provider's authorization
    page; returns the parameters of that request."""
    response = client.get("/connexion/oidc/test")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{issuer}/authorize?")
    return dict(parse_qsl(urlsplit(location).query))


def at_provider(issuer: str, request: dict[str, str], email: str, **choices) -> str:
    """The person signs in at the provider; returns where the provider sends them back."""
    answer = requests.post(f"{issuer}/authorize", data={**request, "email": email, **choices},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def back_to_app(client, location: str):
    back = urlsplit(location)
    assert back.path == "/connexion/oidc/test/retour"
    return client.get(f"{back.path}?{back.query}")


def sign_in_through_provider(client, issuer: str, email: str, **choices):
    return back_to_app(client, at_provider(issuer, start(client, issuer), email, **choices))


def refusal(client, response) -> str:
    """The French message the login page shows after a refused sign-in."""
    assert response.status_code == 302 and response.headers["Location"] == "/connexion"
    page = client.get("/connexion").get_data(as_text=True)
    assert client.get("/").status_code == 302  # nobody signed in
    return html.unescape(page)


def failures(db_session) -> list[str]:
    return db_session.scalars(select(AuditEvent.purpose).where(
        AuditEvent.action == "login_failed")).all()


def test_a_referent_signs_in_through_the_provider_and_logs_out_of_both(
        oidc_app, oidc_provider, world, db_session):
    client = oidc_app.test_client()
    request = start(client, oidc_provider)
    assert request["acr_values"] == f"eidas1 {OIDC_SECOND_FACTOR_ACR}"
    assert request["scope"] == "openid email siret"
    assert request["nonce"] and request["state"]
    response = back_to_app(client, at_provider(oidc_provider, request, "Referent@test.invalid",
                                               siret="22930008201453"))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Bonjour Test referent" in client.get("/").get_data(as_text=True)

    referent = world["users"]["referent"]
    link = db_session.scalars(select(OidcLink)).one()
    assert (link.user_id, link.provider, link.subject) == (
        referent.id, "test", "sub-Referent@test.invalid")
    login = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "login")).one()
    assert login.actor_id == referent.id
    assert login.purpose == "test (acr eidas1, SIRET 22930008201453)"

    response = client.post("/deconnexion", data={"csrf_token": csrf_token(client, "/")})
    end_session = urlsplit(response.headers["Location"])
    assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == \
        f"{oidc_provider}/session/end"
    back = requests.get(response.headers["Location"], allow_redirects=False, timeout=10)
    assert urlsplit(back.headers["Location"]).path == "/deconnexion/fin"
    ended = requests.get(f"{oidc_provider}/test/ended-sessions", timeout=10).json()
    assert ended[-1]["id_token_hint"] == dict(parse_qsl(end_session.query))["id_token_hint"]
    assert client.get("/").status_code == 302  # logged out here too


@pytest.mark.parametrize(("flaw", "reason"), [("wrong_audience", "claim_aud"),
                                              ("expired", "expired"),
                                              ("bad_nonce", "claim_nonce")])
def test_an_id_token_that_does_not_hold_is_refused(oidc_app, oidc_provider, world, db_session,
                                                   flaw, reason):
    client = oidc_app.test_client()
    response = sign_in_through_provider(client, oidc_provider, "referent@test.invalid",
                                        flaw=flaw)
    assert "sa réponse n'a pas pu être vérifiée" in refusal(client, response)
    assert failures(db_session) == [f"oidc:test:{reason}"]
    assert db_session.scalars(select(OidcLink)).all() == []


def test_an_answer_with_another_state_is_refused(oidc_app, oidc_provider, world, db_session):
    client = oidc_app.test_client()
    location = urlsplit(at_provider(oidc_provider, start(client, oidc_provider),
                                    "referent@test.invalid"))
    forged = {**dict(parse_qsl(location.query)), "state": "a-state-this-browser-never-sent"}
    response = client.get(f"{location.path}?{urlencode(forged)}")
    assert "sa réponse n'a pas pu être vérifiée" in refusal(client, response)
    assert failures(db_session) == ["oidc:test:state"]


def test_a_sign_in_cancelled_at_the_provider_says_so(oidc_app, oidc_provider, world,
                                                      db_session):
    client = oidc_app.test_client()
    response = sign_in_through_provider(client, oidc_provider, "")  # nobody signed in there
    assert "n'a pas confirmé votre identité" in refusal(client, response)
    assert failures(db_session) == ["oidc:test:provider_said_access_denied"]


def test_an_error_code_made_up_by_a_link_writes_nothing_of_it(oidc_app, oidc_provider, world,
                                                              db_session):
    # ?error= is read before any state: a page could make browsers write its text into the
    # audit rows (an address, say). Only the standard codes are kept.
    client = oidc_app.test_client()
    response = client.get("/connexion/oidc/test/retour?error=jean.dupont@example.fr")
    assert response.status_code in (302, 400, 401, 403)
    assert failures(db_session) == ["oidc:test:provider_said_other"]


def test_an_unknown_address_is_refused_and_no_account_is_created(oidc_app, oidc_provider,
                                                                 world, db_session):
    client = oidc_app.test_client()
    accounts = len(db_session.scalars(select(User)).all())
    response = sign_in_through_provider(client, oidc_provider, "inconnue@test.invalid")
    assert "Aucun compte ICL-I n'est ouvert pour l'adresse e-mail transmise par " \
           "ProConnect (test)" in refusal(client, response)
    assert len(db_session.scalars(select(User)).all()) == accounts
    assert failures(db_session) == ["oidc:test:unknown_account"]


def test_a_deactivated_account_is_refused(oidc_app, oidc_provider, world, db_session):
    world["users"]["director"].active = False
    db_session.commit()
    client = oidc_app.test_client()
    response = sign_in_through_provider(client, oidc_provider, "director@test.invalid")
    assert "Ce compte est désactivé" in refusal(client, response)
    assert failures(db_session) == ["oidc:test:inactive"]


def test_an_account_with_a_one_time_password_is_not_asked_to_change_it(
        oidc_app, oidc_provider, world, db_session):
    world["users"]["facilitator"].must_change_password = True  # created, never used
    db_session.commit()
    client = oidc_app.test_client()
    sign_in_through_provider(client, oidc_provider, "facilitator@test.invalid")
    assert client.get("/seances/").status_code == 200


def test_an_administrator_needs_the_providers_two_factor_acr(oidc_app, oidc_provider, world,
                                                             db_session):
    client = oidc_app.test_client()
    response = sign_in_through_provider(client, oidc_provider, "admin@test.invalid")
    assert "Votre compte exige une authentification à deux facteurs" in refusal(client,
                                                                                 response)
    response = sign_in_through_provider(client, oidc_provider, "admin@test.invalid",
                                        acr=OIDC_SECOND_FACTOR_ACR)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/admin/utilisateurs").status_code == 200


def test_a_second_factor_its_owner_chose_is_not_skipped_through_the_provider(
        oidc_app, oidc_provider, world, db_session, vault):
    enrol_second_factor(db_session, vault, world["users"]["referent"])  # optional, chosen
    db_session.commit()
    client = oidc_app.test_client()
    response = sign_in_through_provider(client, oidc_provider, "referent@test.invalid")
    assert "Votre compte exige une authentification à deux facteurs" in refusal(client,
                                                                                 response)
    response = sign_in_through_provider(client, oidc_provider, "referent@test.invalid",
                                        acr=OIDC_SECOND_FACTOR_ACR)
    assert response.status_code == 302 and response.headers["Location"] == "/"
