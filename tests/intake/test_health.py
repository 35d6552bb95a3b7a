"""/healthz (alive) and /readyz (ready: database, Redis, keyring, a live worker)."""

from __future__ import annotations

import dataclasses
import shutil
import socket

import pytest

from intake import create_app
from tests.helpers import replaced


@pytest.fixture
def own_app(settings, engine, keyring, tmp_path):
    """Builds an app on a copy of the keyring, with other settings if asked."""
    apps = []

    def build(**changes):
        copy = tmp_path / "keyring.json"
        shutil.copy(settings.keyring_path, copy)
        app = create_app(dataclasses.replace(settings, keyring_path=copy, **changes))
        apps.append(app)
        return app, copy

    yield build
    for app in apps:
        app.extensions["icli"].engine.dispose()
        app.extensions["icli"].redis.close()


def test_ready_when_everything_answers_and_a_worker_lives(client, worker_process):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json == {"status": "ready", "checks": {
        "database": "ok", "redis": "ok", "keyring": "ok", "worker": "ok"}}


def test_not_ready_without_a_live_worker_but_alive(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["worker"] == "none seen in the last minute"
    assert client.get("/healthz").status_code == 200


def test_not_ready_while_redis_hangs(own_app):
    with socket.socket() as hung:  # accepts connections, never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        app, _keyring = own_app(redis_url=f"redis://127.0.0.1:{hung.getsockname()[1]}/0")
        response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"] == "unreachable (TimeoutError)"
    assert response.json["checks"]["database"] == "ok"


def test_not_ready_once_the_keyring_file_was_replaced_by_a_wrong_one(own_app, tmp_path):
    app, keyring_file = own_app()
    client = app.test_client()
    assert client.get("/readyz").json["checks"]["keyring"] == "ok"
    replaced(keyring_file, keyring_file, "content")  # the next start would refuse it
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["keyring"] == "refused (KeyMismatchError)"
    assert client.get("/healthz").status_code == 200  # alive: it serves with the keys it held
