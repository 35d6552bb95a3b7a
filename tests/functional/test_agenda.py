"""The thin end-to-end path: a facilitator's button, the outbox row, a real worker, a .docx."""

import contextlib
import html
import io
import os
import pickle
import shutil
import zlib

import redis as redis_lib
from docx import Document
from redis.backoff import NoBackoff
from redis.retry import Retry as ConnectionRetry
from rq import Callback, Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import func, select, update

from generator import runtime
from shared import outbox
from shared.domain import documents
from shared.models import AuditEvent, DocumentJob, GeneratedDocument, Sheet
from shared.queue import DOCUMENT_JOB_FUNCTION, DOCUMENTS_QUEUE, sign_payload
from tests.factories import PASSWORD, canary_values
from tests.helpers import csrf_token, docx_xml, request_agenda, run_queue, wait_for


def test_facilitator_generates_the_agenda_through_the_real_worker(
        client, auth, world, worker_process, db_session):
    meeting = world["meeting"]
    auth.login("facilitator@test.invalid", PASSWORD)
    response = request_agenda(client, meeting.id)
    assert response.status_code == 302

    def finished():
        status = client.get(f"/seances/{meeting.id}/documents/agenda/statut").get_json()
        return status if status["status"] in ("done", "failed") else None

    status = wait_for(finished, timeout=60)
    assert status["status"] == "done", status
    page = client.get(f"/seances/{meeting.id}").get_data(as_text=True)
    assert "Télécharger" in page

    download = client.get(status["download"])
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment")
    document = Document(io.BytesIO(download.data))
    cells = [c.text for t in document.tables for r in t.rows for c in r.cells]
    for sheet in world["sheets"]:
        assert any(sheet.reference in c and sheet.beneficiary.pseudonym in c for c in cells)
    assert any("Présentation de l'ALI" in c for c in cells)
    text = "\n".join(p.text for p in document.paragraphs)
    assert "Saint-Denis" in text and 'Salle 2 & "annexe" <rdc>' in text

    xml = docx_xml(download.data)
    for identity in world["identities"]:
        for value in canary_values(identity):
            assert value not in xml

    # Stored encrypted: the database holds no .docx (zip) and no readable text.
    stored = db_session.scalars(select(GeneratedDocument)).one()
    assert not stored.body.startswith(b"PK") and b"Ordre du jour" not in stored.body
    actions = set(db_session.scalars(select(AuditEvent.action)))
    assert {"document_requested", "document_generated", "document_downloaded"} <= actions
    if shutil.which("soffice") or os.environ.get("CI"):  # CI installs LibreOffice
        assert stored.pdf_size, "the worker did not convert to PDF"
        pdf = client.get(status["download"] + "?format=pdf")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
        for identity in world["identities"]:
            assert not any(value.encode() in pdf.data for value in canary_values(identity))
    worker_log = worker_process.log_path.read_text()
    for identity in world["identities"]:
        assert not any(value in worker_log for value in canary_values(identity))


def test_asking_twice_for_the_same_content_gives_one_job(client, auth, world, db_session,
                                                         redis):
    auth.login("facilitator@test.invalid", PASSWORD)
    request_agenda(client, world["meeting"].id)
    request_agenda(client, world["meeting"].id)
    assert db_session.scalar(select(func.count()).select_from(DocumentJob)) == 1
    assert Queue(DOCUMENTS_QUEUE, connection=redis).count == 1


def test_redis_payload_carries_ids_only_with_the_json_serializer(client, auth, world, redis):
    auth.login("facilitator@test.invalid", PASSWORD)
    request_agenda(client, world["meeting"].id)
    blobs = b"".join(redis.dump(key) or b"" for key in redis.keys("*"))
    for identity in world["identities"]:
        assert not any(value.encode() in blobs for value in canary_values(identity))
    job = Queue(DOCUMENTS_QUEUE, connection=redis, serializer=JSONSerializer).jobs[0]
    assert job.func_name == DOCUMENT_JOB_FUNCTION
    assert set(job.args[0]) == {"job", "requester", "expires", "nonce", "sig"}


def test_request_survives_a_redis_outage_and_is_sent_when_redis_is_back(
        app, client, auth, world, db_session, redis, settings, monkeypatch):
    services = app.extensions["icli"]
    down = redis_lib.Redis(unix_socket_path="/nonexistent/sock", socket_connect_timeout=0.2,
                           retry=ConnectionRetry(NoBackoff(), 0))
    monkeypatch.setattr(services, "redis", down)
    auth.login("facilitator@test.invalid", PASSWORD)
    response = request_agenda(client, world["meeting"].id)
    assert response.status_code == 302
    job = db_session.scalars(select(DocumentJob)).one()
    assert job.status == "queued" and job.enqueued_at is None  # waiting in the outbox
    page = client.get(f"/seances/{world['meeting'].id}").get_data(as_text=True)
    assert "En attente" in page

    monkeypatch.undo()  # Redis is back: the next page view (or the worker's sweep) sends it
    client.get(f"/seances/{world['meeting'].id}")
    db_session.expire_all()
    assert db_session.get(DocumentJob, job.id).enqueued_at is not None
    run_queue(settings, redis)
    db_session.expire_all()
    assert db_session.get(DocumentJob, job.id).status == "done"


def test_forged_and_replayed_payloads_are_refused_and_audited(
        world, db_session, redis, settings, keyring):
    job = documents.request_document(db_session, world["meeting"], "agenda", None)
    db_session.commit()
    queue = Queue(DOCUMENTS_QUEUE, connection=redis, serializer=JSONSerializer)
    forged = sign_payload(keyring, job.uuid, None)
    forged["requester"] = world["users"]["facilitator"].id  # changed after signing
    queue.enqueue(DOCUMENT_JOB_FUNCTION, forged)
    expired = sign_payload(keyring, job.uuid, None, ttl=-10)
    queue.enqueue(DOCUMENT_JOB_FUNCTION, expired)
    run_queue(settings, redis)
    db_session.expire_all()
    assert db_session.get(DocumentJob, job.id).status == "queued"  # nothing ran
    refused = db_session.scalars(select(AuditEvent.purpose)
                                 .where(AuditEvent.action == "job_refused")).all()
    assert sorted(refused) == ["bad signature", "expired payload"]

    valid = sign_payload(keyring, job.uuid, None)
    queue.enqueue(DOCUMENT_JOB_FUNCTION, valid)
    queue.enqueue(DOCUMENT_JOB_FUNCTION, valid)  # replayed: single use
    run_queue(settings, redis)
    assert db_session.scalar(select(func.count()).select_from(GeneratedDocument)) == 1
    db_session.expire_all()
    refused = db_session.scalars(select(AuditEvent.purpose)
                                 .where(AuditEvent.action == "job_refused")).all()
    assert sorted(refused) == ["bad signature", "expired payload", "replayed payload"]


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payloads_never_run(world, db_session, redis, settings, tmp_path):
    # Whoever writes to Redis must not make the worker run code: JSON cannot load a pickle.
    marker = tmp_path / "pwned"
    redis.hset("rq:job:evil", mapping={"data": pickle.dumps(_Evil(marker)), "status": "queued",
                                       "created_at": "2026-01-01T00:00:00.000000Z"})
    redis.rpush(f"rq:queue:{DOCUMENTS_QUEUE}", "evil")
    run_queue(settings, redis)
    assert not marker.exists()


def test_a_requester_who_lost_the_right_gets_a_clear_failure(world, db_session, redis, settings,
                                                             keyring):
    facilitator = world["users"]["facilitator"]
    job = documents.request_document(db_session, world["meeting"], "agenda", facilitator.id)
    facilitator.active = False
    db_session.commit()
    Queue(DOCUMENTS_QUEUE, connection=redis, serializer=JSONSerializer).enqueue(
        DOCUMENT_JOB_FUNCTION, sign_payload(keyring, job.uuid, facilitator.id))
    run_queue(settings, redis)
    db_session.expire_all()
    job = db_session.get(DocumentJob, job.id)
    assert job.status == "failed" and "n'a plus le droit" in job.error_message
    refusal = db_session.scalars(select(AuditEvent)
                                 .where(AuditEvent.action == "job_refused")).one()
    assert refusal.purpose == "requester no longer allowed"
    assert (refusal.actor_label, refusal.object_type) == ("worker", "document_jobs")
    assert refusal.object_ids == str(job.id)


def test_a_document_of_a_session_cancelled_since_its_request_fails_saying_so(
        world, db_session, redis, settings, keyring):
    """Found by the simulated year: the agenda requested when the session was convened, then
    the session cancelled before the worker ran it; the job failed with the generic message
    for missing data (« situation absente de l'ordre du jour ? »)."""
    job = documents.request_document(db_session, world["meeting"], "agenda", None)
    world["meeting"].state = "annulee"
    db_session.commit()
    Queue(DOCUMENTS_QUEUE, connection=redis, serializer=JSONSerializer).enqueue(
        DOCUMENT_JOB_FUNCTION, sign_payload(keyring, job.uuid, None))
    run_queue(settings, redis)
    db_session.expire_all()
    job = db_session.get(DocumentJob, job.id)
    assert (job.status, job.error_code) == ("failed", "state")
    assert job.error_message == ("« Ordre du jour » non produit : depuis la demande, la séance "
                                 "est passée à l'état « Annulée ».")
    assert job.attempts == 1  # a deterministic failure is not retried


def test_a_value_failing_its_integrity_check_is_reported_as_such_to_the_facilitator(
        client, auth, world, db_session, redis, settings):
    meeting, (first, second) = world["meeting"], world["sheets"]
    auth.login("facilitator@test.invalid", PASSWORD)
    token = csrf_token(client, f"/seances/{meeting.id}")
    client.post(f"/seances/{meeting.id}/documents/dossier", data={"csrf_token": token})
    # A ciphertext copied onto another sheet's row after the request: its AAD no longer holds.
    db_session.execute(update(Sheet).where(Sheet.id == second.id)
                       .values(situation_data=first.situation_data))
    db_session.commit()
    run_queue(settings, redis)
    status = client.get(f"/seances/{meeting.id}/documents/dossier/statut").get_json()
    assert status["status"] == "failed"
    assert "contrôle d'intégrité" in status["error"]
    assert "absente de l'ordre du jour" not in status["error"]
    failure = db_session.scalars(select(AuditEvent)
                                 .where(AuditEvent.action == "integrity_failure")).one()
    assert failure.object_ids == str(second.id)


def test_a_broken_template_fails_in_french_and_can_be_relaunched(
        client, auth, world, db_session, redis, settings, tmp_path, monkeypatch):
    import dataclasses
    import shutil

    from docx import Document as NewDocument

    broken_dir = tmp_path / "templates"
    shutil.copytree(settings.templates_dir, broken_dir)
    document = NewDocument()
    document.add_paragraph("{% for x in %}")
    document.save(broken_dir / "ordre_du_jour.docx")

    auth.login("facilitator@test.invalid", PASSWORD)
    request_agenda(client, world["meeting"].id)
    run_queue(dataclasses.replace(settings, templates_dir=broken_dir), redis)
    page = client.get(f"/seances/{world['meeting'].id}").get_data(as_text=True)
    assert "Le modèle de document est invalide" in page and "Relancer" in page
    assert "dans le corps du document, erreur de syntaxe" in html.unescape(page)  # its place
    failed = db_session.scalars(select(DocumentJob)).one()
    assert failed.attempts == 1  # a deterministic failure is not retried
    assert ScheduledJobRegistry(DOCUMENTS_QUEUE, connection=redis).count == 0
    assert Queue(DOCUMENTS_QUEUE, connection=redis).count == 0

    request_agenda(client, world["meeting"].id)  # relancer, with the template repaired
    run_queue(settings, redis)
    db_session.expire_all()
    job = db_session.scalars(select(DocumentJob)).one()
    assert job.status == "done" and job.error_message is None  # attempts count anew


def test_a_job_abandoned_by_a_killed_worker_is_run_again_once_its_lease_expires(
        world, db_session, redis, settings):
    from datetime import timedelta

    from generator.worker import sweep
    from shared.db import utcnow

    sweep(runtime.init(settings), redis)  # as workers did before: the world's e-mails sent
    job = documents.request_document(db_session, world["meeting"], "agenda", None)
    db_session.commit()
    claimed = documents.claim(db_session, job.uuid)  # a worker took it, then was killed
    db_session.commit()
    assert claimed.status == "running"
    assert sweep(runtime.current(), redis) == 0  # its lease still runs: not resent
    claimed.lease_until = utcnow() - timedelta(seconds=1)
    db_session.commit()
    assert sweep(runtime.current(), redis) == 1
    run_queue(settings, redis)
    db_session.expire_all()
    done = db_session.get(DocumentJob, job.id)
    assert done.status == "done" and done.attempts == 2
    assert db_session.scalar(select(func.count()).select_from(GeneratedDocument)) == 1


def test_a_job_naming_another_function_never_runs(world, db_session, redis, settings, tmp_path,
                                                   worker_process):
    # Whoever can write to Redis must not choose what the worker runs (rule 9).
    marker = tmp_path / "pwned"
    queue = Queue(DOCUMENTS_QUEUE, connection=redis, serializer=JSONSerializer)
    queue.enqueue("subprocess.getoutput", f"touch {marker}")
    queue.enqueue(DOCUMENT_JOB_FUNCTION, {"job": "x"}, on_success=Callback("os.system"))
    run_queue(settings, redis)  # in this process

    def refused_twice():
        return db_session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "job_refused")) >= 2

    wait_for(refused_twice, timeout=30)
    queue.enqueue("subprocess.getoutput", f"touch {marker}")  # and in the real worker
    wait_for(lambda: queue.count == 0, timeout=30)
    wait_for(lambda: db_session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "job_refused")) >= 3, timeout=30)
    assert not marker.exists()


def test_a_finished_document_can_be_built_again_and_the_earlier_file_is_kept(
        client, auth, world, db_session, redis, settings):
    auth.login("facilitator@test.invalid", PASSWORD)
    request_agenda(client, world["meeting"].id)
    run_queue(settings, redis)
    assert "Régénérer" in client.get(f"/seances/{world['meeting'].id}").get_data(as_text=True)
    url = f"/seances/{world['meeting'].id}"
    client.post(f"{url}/documents/agenda", data={"csrf_token": csrf_token(client, url),
                                                 "rebuild": "1"})
    run_queue(settings, redis)
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).select_from(GeneratedDocument)) == 2
    assert db_session.scalar(select(func.count()).select_from(DocumentJob)) == 1


def test_a_transient_failure_is_retried_and_its_message_stays_out_of_logs_and_redis(
        world, db_session, redis, settings, keyring, monkeypatch, caplog):
    from generator import jobs

    secret = world["identities"][0].nom

    def full_disk(*_args, **_kwargs):  # an error whose message quotes a personal value
        raise OSError(f"no space left while writing {secret}")

    job = documents.request_document(db_session, world["meeting"], "agenda", None)
    db_session.commit()
    outbox.send_pending(db_session, redis, keyring)
    monkeypatch.setattr(jobs, "render", full_disk)
    run_queue(settings, redis)

    db_session.expire_all()
    retried = db_session.get(DocumentJob, job.id)
    assert (retried.status, retried.attempts, retried.step) == ("queued", 1, "nouvelle tentative")
    scheduled = ScheduledJobRegistry(DOCUMENTS_QUEUE, connection=redis).get_job_ids()
    assert len(scheduled) == 1  # RQ runs it again in a few seconds
    for key in redis.keys("*"):  # job hashes keep their exception info compressed
        values = redis.hgetall(key).values() if redis.type(key) == b"hash" else []
        for value in values:
            with contextlib.suppress(zlib.error):
                value = zlib.decompress(value)
            assert secret.encode() not in value, key
    assert "transient failure (OSError)" in caplog.text  # logged by us, with its frames
    assert "TransientFailureError: OSError" in caplog.text  # and by RQ, with the kind only
    assert secret not in caplog.text
