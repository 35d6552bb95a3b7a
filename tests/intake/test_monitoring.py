"""/healthz (alive), /readyz (ready: database, Redis, keyring, a live worker), /metrics,
request ids and the access log."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import socket
from pathlib import Path

import pytest
import yaml

from intake import create_app
from tests.factories import canary_values
from tests.helpers import metric_sample, replaced


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


# -- /metrics ------------------------------------------------------------------------------
TOKEN = "metrics-token-" + "m" * 20


def scrape(client, token=TOKEN):
    return client.get("/metrics", headers={"Authorization": f"Bearer {token}"})


def test_metrics_are_off_without_a_token_and_refused_with_a_wrong_one(client, own_app):
    assert client.get("/metrics").status_code == 404  # no ICLI_METRICS_TOKEN
    app, _keyring = own_app(metrics_token=TOKEN)
    scraper = app.test_client()
    assert scraper.get("/metrics").status_code == 401
    assert scrape(scraper, "wrong").status_code == 401
    assert scrape(scraper).status_code == 200


def test_metrics_count_requests_by_route_rule_and_read_the_state(own_app, world, db_session):
    from shared.domain import documents
    from shared.heartbeat import record

    documents.request_document(db_session, world["meeting"], "agenda", None)
    record(db_session, "a-worker", "worker", {"content": [1]}, converts_pdf=False)
    db_session.commit()
    app, _keyring = own_app(metrics_token=TOKEN)
    client = app.test_client()
    # The counters belong to the process (the other tests' apps count into them too).
    rule = {"route": "/fiches/<int:sheet_id>", "method": "GET"}
    before = scrape(client).get_data(as_text=True)
    sheet = world["sheets"][0]
    client.get(f"/fiches/{sheet.id}")  # anonymous: redirected to the login page
    client.get("/fiches/?q=" + world["identities"][0].nom)
    response = scrape(client)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    body = response.get_data(as_text=True)

    for name, labels in (("icli_http_requests_total", {**rule, "status": "302"}),
                         ("icli_http_request_duration_seconds_count", rule)):
        counted = metric_sample(body, name, **labels)
        assert counted is not None and counted - (metric_sample(before, name, **labels) or 0) == 1
    assert metric_sample(body, "icli_document_jobs", kind="agenda", state="queued") == 1
    assert metric_sample(body, "icli_queue_jobs", queue="documents") is not None
    assert metric_sample(body, "icli_live_processes", kind="worker") == 1
    assert metric_sample(body, "icli_key_rows", chain="content", version="1") > 0
    assert metric_sample(body, "icli_audit_rows_unsealed") is not None
    assert "# TYPE icli_emails gauge" in body
    assert metric_sample(body, "icli_up", source="redis") == 1
    assert metric_sample(body, "icli_up", source="database") == 1
    # Rules, never paths: no record id, no query string, no name.
    assert f"/fiches/{sheet.id}" not in body
    for value in canary_values(world["identities"][0]):
        assert value not in body


def test_metrics_say_which_source_did_not_answer(own_app):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    app, _keyring = own_app(metrics_token=TOKEN, redis_url=f"redis://127.0.0.1:{port}/0")
    response = scrape(app.test_client())
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert metric_sample(body, "icli_up", source="redis") == 0
    assert metric_sample(body, "icli_up", source="database") == 1
    assert "icli_queue_jobs" not in body  # left out, not reported as an empty queue


# -- request ids and the access log --------------------------------------------------------
def test_each_response_carries_a_request_id_taken_from_the_proxy_when_well_formed(client):
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz").headers["X-Request-ID"]
    given = client.get("/healthz", headers={"X-Request-ID": "proxy-42.a:b"})
    assert given.headers["X-Request-ID"] == "proxy-42.a:b"
    forged = client.get("/healthz", headers={"X-Request-ID": 'x" "level": "forged'})
    assert forged.headers["X-Request-ID"] != 'x" "level": "forged'
    assert len(forged.headers["X-Request-ID"]) == 32


def test_a_method_the_client_made_up_is_counted_and_logged_as_other(own_app, caplog):
    """A client chooses the method: as a label each would be a new series (memory without
    limit) and text a user typed."""
    app, _keyring = own_app(metrics_token=TOKEN)
    client = app.test_client()
    access = logging.getLogger("icli.access")
    access.addHandler(caplog.handler)  # create_app replaced the root's handlers
    try:
        for name in ("DUPONTJEAN", "MARTIN1"):
            client.open("/healthz", method=name)
    finally:
        access.removeHandler(caplog.handler)
    body = scrape(client).get_data(as_text=True)
    assert "DUPONT" not in body and "MARTIN" not in body
    # 405: no rule matched this method (route "unmatched")
    assert metric_sample(body, "icli_http_requests_total", route="unmatched", method="other",
                         status="405") >= 2
    lines = [r.getMessage() for r in caplog.records if r.name == "icli.access"]
    assert lines and all(line.startswith("other unmatched 405") for line in lines)


def test_the_access_log_names_the_rule_status_and_time_never_the_query(client, world, caplog):
    name = world["identities"][0].nom
    with caplog.at_level(logging.INFO, logger="icli.access"):
        response = client.get("/fiches/?q=" + name, headers={"X-Request-ID": "req-1"})
    lines = [r for r in caplog.records if r.name == "icli.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line.route == "/fiches/" and line.status == response.status_code
    assert line.method == "GET" and line.duration_ms >= 0
    assert name not in line.getMessage() and "q=" not in line.getMessage()


def test_the_example_dashboard_and_alerts_only_use_metrics_the_services_export(own_app):
    """docs/monitoring: every metric named in a panel or an alert is one a scrape returns."""
    from prometheus_client import CollectorRegistry, generate_latest

    from shared import metrics

    app, _keyring = own_app(metrics_token=TOKEN)
    client = app.test_client()
    client.get("/healthz")
    exported = scrape(client).get_data(as_text=True)
    with metrics.job_observed("document") as observation:
        observation.kind, observation.outcome = "agenda", "done"
    worker = CollectorRegistry()
    worker.register(metrics.JOB_SECONDS)
    exported += generate_latest(worker).decode()
    names = set(re.findall(r"^(?:# TYPE )?(icli_\w+)", exported, re.MULTILINE))

    folder = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
    dashboard = json.loads((folder / "grafana-dashboard.json").read_text(encoding="utf-8"))
    expressions = [target["expr"] for panel in dashboard["panels"]
                   for target in panel["targets"]]
    alerts = yaml.safe_load((folder / "icli-alerts.yml").read_text(encoding="utf-8"))
    expressions += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    used = {name for expression in expressions for name in re.findall(r"icli_\w+", expression)}
    assert len(expressions) >= 12 and used
    assert used <= names, used - names
    config = yaml.safe_load((folder / "prometheus.yml").read_text(encoding="utf-8"))
    assert {job["job_name"] for job in config["scrape_configs"]} == {"icli-web", "icli-worker"}
