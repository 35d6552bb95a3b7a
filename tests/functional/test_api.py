"""The HTTP API under /api/v1 (issue 21): tokens, scopes, expiry, audit, no identity."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shared.domain import api_clients
from shared.domain.users import paris_today
from shared.models import ApiClient, AuditEvent, Circonscription
from tests.factories import canary_values
from tests.helpers import client_as, post


def _token(db_session, vault, scopes=("import", "export"), days=30) -> str:
    _, token = api_clients.create_client(db_session, vault, name="SI du département",
                                         scopes=list(scopes),
                                         expires_on=paris_today() + timedelta(days=days),
                                         today=paris_today())
    db_session.commit()
    return token


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _api_calls(db_session) -> list[str]:
    db_session.expire_all()
    return db_session.scalars(select(AuditEvent.purpose).where(
        AuditEvent.action == "api_call").order_by(AuditEvent.id)).all()


def test_an_administrator_creates_a_token_shown_once_and_stored_hashed(app, world, db_session):
    admin = client_as(app, "admin")
    page = post(admin, "/admin/api", {"name": "Infocentre", "scopes": ["export"],
                                      "expires_on": str(paris_today() + timedelta(days=90))})
    token = re.search(r'<code id="jeton">([^<]+)</code>', page.get_data(as_text=True)).group(1)
    client = db_session.scalar(select(ApiClient))
    assert client.scope_set == {"export"} and token not in client.token_hash
    assert client.token_hash == api_clients.token_digest(token)
    assert token not in admin.get("/admin/api").get_data(as_text=True)
    created = db_session.scalar(select(AuditEvent).where(
        AuditEvent.action == "api_client_created"))
    assert created.actor_id == world["users"]["admin"].id and created.fields == "export"
    api = app.test_client()
    assert api.get("/api/v1/statistics?circonscription=C01&year=2026&month=11",
                   headers=_bearer(token)).status_code == 200
    # Revoked: refused at once.
    post(admin, f"/admin/api/{client.id}/revoquer", form_url="/admin/api")
    assert api.get("/api/v1/statistics?circonscription=C01&year=2026&month=11",
                   headers=_bearer(token)).status_code == 401


def test_csrf_still_protects_every_form_but_not_the_token_api(app, world, db_session, vault):
    admin = client_as(app, "admin")
    refused = admin.post("/admin/api", data={"name": "Sans jeton CSRF", "scopes": ["export"],
                                             "expires_on": "2027-01-01"})
    assert refused.status_code == 400 and db_session.scalar(select(ApiClient.id)) is None
    token = _token(db_session, vault)
    response = app.test_client().post("/api/v1/imports", headers=_bearer(token), json={
        "kind": "circonscriptions", "csv": "code;nom\nC09;Bondy\n", "dry_run": False})
    assert response.status_code == 200 and response.json["applied"] is True
    # A logged-in browser's cookie is no credential here: no token, no call.
    assert admin.post("/api/v1/imports", json={"kind": "circonscriptions", "csv": "code;nom\n",
                                               "dry_run": True}).status_code == 401


def test_missing_unknown_expired_or_out_of_scope_tokens_are_refused(app, world, db_session,
                                                                    vault):
    api = app.test_client()
    url = "/api/v1/decisions?since=2026-01-01&until=2026-12-31"
    missing = api.get(url)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json["message"] == "Jeton d'API absent, inconnu, expiré ou révoqué."
    assert api.get(url, headers=_bearer("icli_not-a-token")).status_code == 401
    importer = _token(db_session, vault, scopes=("import",))
    response = api.get(url, headers=_bearer(importer))
    assert response.status_code == 403 and response.json["message"] == \
        "Ce jeton n'a pas le droit « export »."
    expired = _token(db_session, vault, scopes=("export",))
    row = db_session.scalar(select(ApiClient).where(
        ApiClient.token_hash == api_clients.token_digest(expired)))
    row.expires_at = row.created_at
    db_session.commit()
    assert api.get(url, headers=_bearer(expired)).status_code == 401
    # Every call is audited, the refused ones too; no token ever in the audit rows.
    assert _api_calls(db_session) == ["api.decisions 401"] * 2 + ["api.decisions 403",
                                                                  "api.decisions 401"]
    purposes = " ".join(db_session.scalars(select(AuditEvent.purpose)))
    assert "icli_" not in purposes


def test_the_api_import_is_the_page_import_all_or_nothing_with_french_errors(app, world,
                                                                           db_session, vault):
    api, token = app.test_client(), _token(db_session, vault, scopes=("import",))
    text = "code;nom\nC10;Pantin\nC11;=HYPERLINK(\"x\")\n"
    response = api.post("/api/v1/imports", headers=_bearer(token),
                        json={"kind": "circonscriptions", "csv": text, "dry_run": False})
    assert response.status_code == 400 and response.json["applied"] is False
    assert response.json["errors"] == [
        "Ligne 3 : colonne « nom » : une cellule ne peut pas commencer par « = », « + », "
        "« - » ou « @ » (formule de tableur refusée)."]
    assert db_session.scalar(select(func.count()).select_from(Circonscription)) == 2
    dry = api.post("/api/v1/imports", headers=_bearer(token),
                   json={"kind": "circonscriptions", "csv": "code;nom\nC10;Pantin\n"})
    assert dry.json["applied"] is False and dry.json["changes"] == [
        {"line": 2, "action": "création", "key": "C10", "fields": []}]


def test_decisions_export_pseudonymised_and_no_response_carries_an_identity(
        app, world, db_session, vault, examined):
    meeting, sheet, _, _ = examined
    token = _token(db_session, vault)
    api = app.test_client()
    day, today = meeting.starts_at.date(), paris_today()  # avis counted in the month given
    responses = [
        api.get(f"/api/v1/decisions?since={day}&until={day}", headers=_bearer(token)),
        api.get(f"/api/v1/statistics?circonscription=C01&year={today.year}"
                f"&month={today.month}",
                headers=_bearer(token)),
        api.post("/api/v1/imports", headers=_bearer(token),
                 json={"kind": "comptes", "csv": "email;nom;role\n", "dry_run": True}),
        api.get("/api/v1/openapi.json"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200]
    exported = responses[0].json
    assert exported == [{
        "reference": sheet.reference, "pseudonym": sheet.beneficiary.pseudonym,
        "session": {"date": str(day), "circonscription": "C01"},
        "avis": "maintien", "avis_label": exported[0]["avis_label"], "come_back_on": None,
        "formal_decision_by": "departement",
        "formal_decision_by_label": "Oui, par le Département",
        "preconisations": [{"label": "Atelier CV", "structure": None, "due_on": None,
                            "done_on": None}],
        "formal_decision": None}]
    assert responses[1].json["outcomes"]["decisions"] == 1
    canaries = [value for identity in world["identities"] for value in canary_values(identity)]
    for response in responses:
        body = response.get_data(as_text=True)
        assert not [value for value in canaries if value in body], response.request.path
    assert _api_calls(db_session) == ["api.decisions 200", "api.statistics 200",
                                      "api.import_csv 200"]  # the document is public


def test_the_openapi_document_describes_the_three_operations(app):
    document = app.test_client().get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/api/v1/imports", "/api/v1/decisions",
                                      "/api/v1/statistics"}
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


@pytest.mark.parametrize("until", ["2026-01-01", "2028-06-01"])
def test_a_period_backwards_or_over_a_year_is_a_422(app, world, db_session, vault, until):
    response = app.test_client().get(f"/api/v1/decisions?since=2026-06-01&until={until}",
                                     headers=_bearer(_token(db_session, vault)))
    assert response.status_code == 422 and response.json["message"]


def test_malformed_parameters_are_a_422_with_a_french_message(app, world, db_session, vault):
    response = app.test_client().get("/api/v1/statistics?circonscription=C01&year=1&month=13",
                                     headers=_bearer(_token(db_session, vault)))
    assert response.status_code == 422
    assert response.json["message"].startswith("Paramètres invalides")
    assert set(response.json["errors"]["query"]) == {"year", "month"}
