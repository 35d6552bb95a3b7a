"""Nothing a worker is configured with lets it act as a user (issue 16, item 1): neither its
settings, as the worker loads them, nor any key of its keyring signs a session cookie the web
app accepts."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest
from flask import Flask

from generator import runtime
from shared.config import load_settings
from tests.factories import canary_identity, make_sheet
from tests.helpers import logged_in


def values_of(settings) -> list[str | bytes]:
    """Every text a Settings holds, nested ones (SMTP credentials) included."""
    found = []
    for item in dataclasses.fields(settings):
        value = getattr(settings, item.name)
        if dataclasses.is_dataclass(value):
            found += values_of(value)
        elif isinstance(value, str | Path):
            found.append(str(value))
        elif isinstance(value, tuple | list):
            found += [str(v) for v in value]
        elif isinstance(value, dict):
            found += [str(v) for v in value.values()]
    return [v for v in found if v]


def worker_secrets(test_env) -> list[str | bytes]:
    """What the worker holds: its settings (loaded as ``python -m generator`` does, from an
    environment that even exports the session secret) and every key version of its keyring,
    raw and as written in the keyring file."""
    held = runtime.init(load_settings(test_env, worker=True))
    candidates = values_of(held.settings)
    for chain in held.keyring.chains:
        for version in held.keyring.versions(chain):
            candidates += [version.key, base64.b64encode(version.key).decode()]
    return candidates


def cookie_signed_with(app, secret: str | bytes, payload: dict) -> str:
    """A session cookie with ``payload``, signed by Flask's own session interface."""
    forger = Flask("forger")
    forger.secret_key = secret
    return app.session_interface.get_signing_serializer(forger).dumps(payload)


@pytest.fixture
def sheet_and_session(app, world, db_session, vault):
    """A referent's sheet and the exact content of the referent's real session cookie."""
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(8),
                       author_id=world["users"]["referent"].id)
    db_session.commit()
    client = logged_in(app, "referent@test.invalid")
    real = client.get_cookie("session").value
    payload = app.session_interface.get_signing_serializer(app).loads(real)
    return sheet, payload


def opens_the_sheet(app, sheet, cookie: str) -> bool:
    client = app.test_client()
    client.set_cookie("session", cookie)
    response = client.get(f"/fiches/{sheet.id}")
    return response.status_code == 200


def test_the_session_secret_forges_a_cookie_so_the_probe_can_fail(app, sheet_and_session):
    sheet, payload = sheet_and_session
    assert opens_the_sheet(app, sheet, cookie_signed_with(app, app.secret_key, payload))


def test_nothing_the_worker_holds_signs_a_session_cookie_the_web_accepts(
        app, sheet_and_session, test_env):
    sheet, payload = sheet_and_session
    candidates = worker_secrets(test_env)
    assert len(candidates) > 10  # paths, URLs, the link key, every key version
    forging = [i for i, secret in enumerate(candidates)
               if opens_the_sheet(app, sheet, cookie_signed_with(app, secret, payload))]
    assert not forging, f"worker values {forging} sign a valid session cookie"  # indexes only


def test_the_worker_runtime_drops_a_session_secret_it_was_handed(settings):
    # worker.main(settings) with the web's settings (tests, embedding): still not kept.
    assert runtime.init(settings).settings.secret_key == ""
    assert runtime.current().settings.link_key == settings.link_key
