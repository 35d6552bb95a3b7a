"""What operators see of a job: the worker's log lines carry the id of the request that asked
for it, and the worker's own /metrics counts it by kind and outcome. Real worker process."""

from __future__ import annotations

import urllib.request

import pytest

from tests.factories import PASSWORD
from tests.helpers import csrf_token, free_port, metric_sample, start_worker, stop_worker, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def metered_worker(test_env, engine, redis, tmp_path):
    """A worker serving its job figures on a free local port."""
    address = f"127.0.0.1:{free_port()}"
    process = start_worker({**test_env, "ICLI_WORKER_METRICS_ADDRESS": address,
                            "ICLI_LOG_FORMAT": "json"}, redis, tmp_path / "worker.log")
    process.metrics_url = f"http://{address}/metrics"
    yield process
    assert stop_worker(process), process.log_path.read_text()[-3000:]


def test_a_job_logs_its_request_id_and_is_counted_by_kind_and_outcome(
        client, auth, world, metered_worker):
    meeting = world["meeting"]
    auth.login("facilitator@test.invalid", PASSWORD)
    response = client.post(f"/seances/{meeting.id}/documents/agenda",
                           data={"csrf_token": csrf_token(client, f"/seances/{meeting.id}")},
                           headers={"X-Request-ID": "ask-agenda-1"})
    assert response.status_code == 302

    def finished():
        status = client.get(f"/seances/{meeting.id}/documents/agenda/statut").get_json()
        return status if status["status"] in ("done", "failed") else None

    assert wait_for(finished, timeout=60)["status"] == "done"

    def counted():
        with urllib.request.urlopen(metered_worker.metrics_url, timeout=5) as answer:  # noqa: S310
            body = answer.read().decode()
        return metric_sample(body, "icli_job_duration_seconds_count", queue="document",
                      kind="agenda", outcome="done")

    assert wait_for(counted, timeout=10) == 1
    log = metered_worker.log_path.read_text()
    job_lines = [line for line in log.splitlines() if "ask-agenda-1" in line]
    assert any('"message": "job ' in line and " done: document " in line for line in job_lines)
