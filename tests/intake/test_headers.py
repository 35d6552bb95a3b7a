"""HTTP headers of the real app: nothing personal is kept in a cache, HTTPS is pinned in
production (issue 16, item 8)."""

from __future__ import annotations

import dataclasses

from intake import create_app
from tests.factories import canary_identity, make_sheet
from tests.helpers import client_as, csrf_token

HSTS = "Strict-Transport-Security"


def test_the_right_of_access_zip_is_never_stored_by_a_cache(app, world, db_session, vault):
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(5),
                       author_id=world["users"]["referent"].id, status="soumise")
    db_session.commit()
    client = client_as(app, "referent")
    token = csrf_token(client, f"/fiches/{sheet.id}")
    response = client.post(f"/fiches/{sheet.id}/droit-d-acces", data={"csrf_token": token})
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_session_download_is_never_stored_by_a_cache(app, world):
    client = client_as(app, "facilitator")
    response = client.get(f"/seances/{world['meeting'].id}/archive")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Cache-Control"] == "no-store"


def test_authenticated_pages_are_never_stored_by_a_cache(app, world):
    client = client_as(app, "facilitator")
    response = client.get(f"/seances/{world['meeting'].id}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_production_pins_https_with_hsts(settings, engine, keyring):
    production = create_app(dataclasses.replace(settings, env="production"))
    try:
        response = production.test_client().get("/connexion", base_url="https://icli.test")
    finally:
        production.extensions["icli"].engine.dispose()
        production.extensions["icli"].redis.close()
    assert response.status_code == 200
    max_age = response.headers[HSTS].partition("max-age=")[2].split(";")[0]
    assert int(max_age) >= 31536000  # a year at least


def test_development_over_plain_http_sends_no_hsts(client, engine):
    assert HSTS not in client.get("/connexion").headers
