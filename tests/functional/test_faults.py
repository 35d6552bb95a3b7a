"""Faults, for real: a worker killed mid-job, Redis stopped during a request, a worker that
outgrows its memory limit."""

import dataclasses
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import psutil
import redis as redis_lib
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from shared.domain.meetings import add_partnership_item, create_meeting
from shared.models import DocumentJob, GeneratedDocument
from shared.queue import DOCUMENTS_QUEUE
from shared.redis_server import start_bundled_redis
from tests import helpers
from tests.factories import PASSWORD, PLANNED_ON
from tests.helpers import csrf_token, die_with_parent, generate, logged_in, wait_for


def start_worker(test_env, log_path, lease_seconds):
    env = {**os.environ, **test_env, "ICLI_JOB_LEASE": str(lease_seconds)}
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "generator"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent)


def job_status(db_session, job_id: int) -> str:
    db_session.expire_all()
    return db_session.get(DocumentJob, job_id).status


def kill_group(process):
    """SIGKILL the worker (it runs its jobs itself) and its RQ scheduler: nothing gets to
    clean up."""
    os.killpg(process.pid, signal.SIGKILL)
    helpers.reap(process, 10)


def test_a_worker_killed_mid_job_leaves_a_job_that_another_worker_finishes_once(
        test_env, engine, redis, world, db_session, vault, tmp_path):
    from shared.domain import documents

    # Given an agenda long enough for the render to take a moment
    meeting = create_meeting(db_session, world["north"], datetime(2027, 2, 9, 14, 0), "Salle",
                             today=PLANNED_ON)
    for n in range(400):
        add_partnership_item(db_session, vault, meeting, f"Point partenarial n°{n}",
                             presenter_structure="PLIE", presenter_role="Chargée de mission",
                             duration_minutes=10)
    job = documents.request_document(db_session, meeting, "agenda", None)
    db_session.commit()
    first = start_worker(test_env, tmp_path / "worker.log", lease_seconds=3)
    try:
        wait_for(lambda: job_status(db_session, job.id) == "running", timeout=180,
                 interval=0.01)  # a loaded machine starts it slowly
    finally:
        kill_group(first)  # killed while it builds the document
    assert job_status(db_session, job.id) == "running"  # left behind, lease running
    second = start_worker(test_env, tmp_path / "worker.log", lease_seconds=3)
    try:
        wait_for(lambda: job_status(db_session, job.id) == "done", timeout=90)
    finally:
        second.terminate()
        stopped = helpers.reap(second, 30)  # else killed, with what it started
    log = (tmp_path / "worker.log").read_text()
    assert stopped, f"the worker did not exit within 30 s of SIGTERM:\n{log[-3000:]}"
    assert db_session.scalar(select(func.count()).select_from(GeneratedDocument)
                             .where(GeneratedDocument.meeting_id == meeting.id)) == 1
    assert db_session.get(DocumentJob, job.id).attempts == 2  # the killed run, then the sweep's
    for process in (first, second):
        assert process.poll() is not None  # nothing left behind
    assert not psutil.pid_exists(first.pid) or psutil.Process(first.pid).status() == "zombie"


def test_a_request_made_while_redis_is_down_completes_once_redis_is_back(
        settings, test_env, engine, world, db_session, tmp_path, short_tmp):
    from intake import create_app

    socket, data = short_tmp / "r.sock", short_tmp / "redis"
    server = start_bundled_redis(socket, data)
    own = dataclasses.replace(settings, redis_url=f"unix://{socket}")
    app = create_app(own)
    client = app.test_client()
    token = csrf_token(client, "/connexion")
    client.post("/connexion", data={"csrf_token": token, "email": "facilitator@test.invalid",
                                    "password": PASSWORD})
    url = f"/seances/{world['meeting'].id}"
    try:
        server.terminate()
        server.wait(10)  # Redis goes down
        token = csrf_token(client, url)
        response = client.post(f"{url}/documents/agenda", data={"csrf_token": token})
        assert response.status_code == 302
        job = db_session.scalars(select(DocumentJob)).one()
        assert job.status == "queued" and job.enqueued_at is None  # kept in the outbox
        page = client.get(url).get_data(as_text=True)
        assert "En attente" in page and "injoignable" in page

        server = start_bundled_redis(socket, data)  # Redis is back
        client.get(url)  # the next page view sends what waited
        connection = redis_lib.Redis(unix_socket_path=str(socket))
        assert Queue(DOCUMENTS_QUEUE, connection=connection,
                     serializer=JSONSerializer).count == 1
        worker = helpers.start_worker({**test_env, "ICLI_REDIS_URL": f"unix://{socket}"},
                                       connection, tmp_path / "worker.log")
        try:
            wait_for(lambda: job_status(db_session, job.id) == "done", timeout=90)
        finally:
            helpers.stop_worker(worker)
        assert db_session.get(DocumentJob, job.id).attempts == 1
        assert db_session.scalar(select(func.count()).select_from(GeneratedDocument)) == 1
        connection.close()
    finally:
        server.terminate()
        server.wait(10)
        app.extensions["icli"].engine.dispose()
        app.extensions["icli"].redis.close()


def test_a_click_while_redis_hangs_waits_two_seconds_at_most_and_loses_nothing(
        settings, world, db_session):
    """A Redis that accepts connections and never answers (hung, or a network black hole):
    the page answers within the web's Redis timeout and says so; the job waits in the
    outbox."""
    import socket
    import time

    from intake import create_app

    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)  # the kernel completes the connections; nothing ever reads them
        app = create_app(dataclasses.replace(
            settings, redis_url=f"redis://127.0.0.1:{hung.getsockname()[1]}/0"))
        try:
            client = logged_in(app, "facilitator@test.invalid")
            url = f"/seances/{world['meeting'].id}"
            token = csrf_token(client, url)
            started = time.monotonic()
            response = client.post(f"{url}/documents/agenda", data={"csrf_token": token})
            waited = time.monotonic() - started
            page = client.get(url).get_data(as_text=True)
        finally:
            app.extensions["icli"].engine.dispose()
            app.extensions["icli"].redis.close()
    # One call of 0.9 s and its retry (before: 10 s, a health check and a retry, twice)
    assert waited < 4, f"{waited:.1f} s"
    assert response.status_code == 302 and "injoignable" in page
    job = db_session.scalars(select(DocumentJob)).one()
    assert job.status == "queued" and job.enqueued_at is None


def test_jobs_lost_when_redis_restarts_empty_are_sent_again_at_the_next_sweep(
        settings, test_env, engine, world, db_session, tmp_path, short_tmp):
    from intake import create_app

    socket, data = short_tmp / "r.sock", short_tmp / "redis"
    server = start_bundled_redis(socket, data)
    env = {**test_env, "ICLI_REDIS_URL": f"unix://{socket}"}
    connection = redis_lib.Redis(unix_socket_path=str(socket))
    app = create_app(dataclasses.replace(settings, redis_url=f"unix://{socket}"))
    try:
        # Given an instance whose worker has swept once (Redis then holds its mark)
        helpers.stop_worker(helpers.start_worker(env, connection, tmp_path / "worker.log"))
        client = logged_in(app, "facilitator@test.invalid")
        url = f"/seances/{world['meeting'].id}"
        client.post(f"{url}/documents/agenda", data={"csrf_token": csrf_token(client, url)})
        job = db_session.scalars(select(DocumentJob)).one()
        assert job.enqueued_at is not None  # handed to Redis
        # When Redis restarts empty (without its data) before a worker takes the job
        server.terminate()
        server.wait(10)
        server = start_bundled_redis(socket, short_tmp / "redis-empty")
        connection.close()
        assert Queue(DOCUMENTS_QUEUE, connection=connection,
                     serializer=JSONSerializer).count == 0
        # Then the next sweep sends it again (before: only 10 minutes after it was handed)
        worker = helpers.start_worker(env, connection, tmp_path / "worker.log")
        try:
            wait_for(lambda: job_status(db_session, job.id) == "done", timeout=60)
        finally:
            assert helpers.stop_worker(worker)
        assert db_session.get(DocumentJob, job.id).attempts == 1
        assert "Redis lost its queues" in (tmp_path / "worker.log").read_text()
    finally:
        connection.close()
        server.terminate()
        server.wait(10)
        app.extensions["icli"].engine.dispose()
        app.extensions["icli"].redis.close()


def test_sessions_list_and_generate_work_from_the_command_line(
        test_env, engine, world, worker_process, tmp_path):
    import json

    from docx import Document

    from tests.helpers import icli

    listed = json.loads(icli(test_env, "meetings", "list", "--json").stdout)
    assert listed[0].keys() == {"id", "circonscription", "date", "state", "situations"}
    assert {(r["id"], r["situations"]) for r in listed} == {(world["meeting"].id, 2)}
    out = tmp_path / "odj.docx"
    result = icli(test_env, "generate", "--meeting", str(world["meeting"].id), "--kind",
                  "agenda", "--out", str(out))
    assert "wrote" in result.stdout
    text = "\n".join(c.text for t in Document(str(out)).tables for r in t.rows for c in r.cells)
    assert world["sheets"][0].reference in text


def test_generate_says_when_no_worker_is_running(test_env, engine, world, redis, tmp_path):
    from tests.helpers import icli

    result = icli(test_env, "generate", "--meeting", str(world["meeting"].id), "--kind",
                  "agenda", "--out", str(tmp_path / "x.docx"), check=False)
    assert result.returncode != 0 and "no worker is running" in result.stderr


def test_generate_refuses_an_unwritable_output_before_any_work(test_env, engine, world, redis,
                                                               tmp_path, db_session):
    from shared.models import AuditEvent, DocumentJob
    from tests.helpers import icli

    link = tmp_path / "link.docx"
    link.symlink_to(tmp_path / "elsewhere.docx")
    for out, reason in ((tmp_path / "missing" / "x.docx", "no such directory"),
                        (link, "symbolic link is refused")):
        result = icli(test_env, "generate", "--meeting", str(world["meeting"].id), "--kind",
                      "agenda", "--out", str(out), check=False)
        assert result.returncode != 0 and reason in result.stderr
        assert "Traceback" not in result.stderr
    db_session.expire_all()
    assert db_session.scalars(select(DocumentJob)).all() == []
    assert not db_session.scalars(select(AuditEvent).where(
        AuditEvent.action.in_(("document_requested", "document_exported")))).all()


def test_a_worker_past_its_memory_limit_restarts_between_jobs_and_goes_on(
        app, test_env, redis, world, tmp_path):
    # Given a worker whose limit (1 MiB) every job leaves it above. Without LibreOffice on
    # its PATH: each restart would start it again for the next job's PDF, which is not what
    # this test is about (and a stop waits for the job under way).
    worker = helpers.start_worker({**test_env, "ICLI_WORKER_MEMORY_MB": "1",
                                   "PATH": str(Path(sys.executable).parent)}, redis,
                                  tmp_path / "worker.log")
    try:
        facilitator = logged_in(app, "facilitator@test.invalid")
        # When two documents are asked for, one after the other
        agenda = generate(facilitator, world["meeting"].id, "agenda")
        dossier = generate(facilitator, world["meeting"].id, "dossier")
        # Then both are built, the second by the same process restarted after the first
        assert agenda and dossier

        def ready_again():  # restarted after its last job (the e-mails are jobs too)
            last = worker.log_path.read_text().rsplit("1 MiB limit: restarting", 1)
            return len(last) == 2 and f"started with PID {worker.pid}," in last[1]
        wait_for(ready_again, timeout=60)
        assert worker.poll() is None
        log = worker.log_path.read_text()
        assert log.count("1 MiB limit: restarting") >= 2
        assert "Traceback" not in log
    finally:
        stopped = helpers.stop_worker(worker)
    assert stopped and worker.returncode == 0, worker.log_path.read_text()[-3000:]
