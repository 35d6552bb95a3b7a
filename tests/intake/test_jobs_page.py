"""The administrators' « Travaux » page: document jobs counted, failed and stuck, live workers,
and « Relancer »."""

import re
import socket
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared import heartbeat
from shared.db import utcnow
from shared.domain import documents, job_board
from shared.models import AuditEvent, DocumentJob
from tests.factories import canary_values
from tests.helpers import client_as, csrf_token, flash_text, post, reload, run_queue

PAGE = "/admin/travaux"


def failed_agenda(db_session, world) -> DocumentJob:
    """The session's agenda, asked by its facilitator, failed at the layout step."""
    job = documents.request_document(db_session, world["meeting"], "agenda",
                                     world["users"]["facilitator"].id)
    documents.set_step(db_session, job, "mise en page")
    job.attempts = 1
    documents.fail(db_session, job, "template",
                   "Le modèle de document est invalide (paragraphe 3).")
    db_session.commit()
    return job


def section(page: str, title_id: str) -> str:
    """The HTML of one section of the page, by the id of its title."""
    return page.split(f'id="{title_id}"')[1].split("</section>")[0]


def retried_rows(db_session) -> list[AuditEvent]:
    return db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "document_job_retried")).all()


def test_the_page_counts_jobs_and_lists_a_failure_with_its_code_and_a_retry_button(
        app, world, db_session):
    meeting, sheet = world["meeting"], world["sheets"][0]
    job = failed_agenda(db_session, world)
    db_session.add_all([
        DocumentJob(meeting_id=meeting.id, kind="dossier", content_version=1, status="done"),
        DocumentJob(meeting_id=meeting.id, kind="dossier", content_version=2, status="done"),
        DocumentJob(meeting_id=meeting.id, kind="feedback", content_version=1, status="failed",
                    subject=str(sheet.id), sheet_id=sheet.id, error_code="data",
                    step="préparation des données", finished_at=utcnow()),
    ])
    db_session.commit()
    assert job_board.counts_by_kind_and_state(db_session) == {
        ("agenda", "failed"): 1, ("dossier", "done"): 2, ("feedback", "failed"): 1}

    response = client_as(app, "admin").get(PAGE)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<h1>Travaux</h1>" in page
    # Its nav link comes right after « Courriels ».
    assert re.search(r">Courriels</a></li>\s*<li><a href=\"/admin/travaux\">Travaux</a>", page)
    counts = section(page, "titre-compteurs")
    assert re.search(r'<th scope="row">Ordre du jour</th><td>0</td><td>0</td><td>0</td>'
                     r"<td>1</td></tr>", counts)
    assert re.search(r'<th scope="row">Dossier de séance</th><td>0</td><td>0</td><td>2</td>'
                     r"<td>0</td></tr>", counts)
    assert re.search(r'<th scope="row">Total</th><td>0</td><td>0</td><td>2</td><td>2</td>',
                     counts)
    failures = section(page, "titre-echecs")
    assert f"<td>{job.id}</td><td>Ordre du jour</td>" in failures
    assert f"n° {meeting.id} du {meeting.starts_at.strftime('%d/%m/%Y')}" in failures
    assert "<code>template</code>" in failures and "mise en page" in failures
    assert "Le modèle de document est invalide (paragraphe 3)." in failures
    assert f'action="/admin/travaux/{job.id}/relancer"' in failures
    assert failures.count(">Relancer</button>") == 2
    assert "<code>data</code>" in failures and "préparation des données" in failures
    # Kind and place only: nothing about the person the fiche retour is for.
    assert not any(secret in page for secret in [
        sheet.reference, sheet.beneficiary.pseudonym, *canary_values(world["identities"][0])])


def test_relancer_queues_the_failed_job_again_once_audited_and_the_worker_builds_it(
        app, world, db_session, settings, redis):
    job = failed_agenda(db_session, world)
    facilitator_id = world["users"]["facilitator"].id

    landed = post(client_as(app, "admin"), f"/admin/travaux/{job.id}/relancer", form_url=PAGE)
    assert "Génération relancée." in flash_text(landed)
    job = reload(db_session, DocumentJob, job.id)
    assert (job.status, job.step, job.error_code, job.error_message, job.attempts,
            job.document_id) == ("queued", "en file d'attente", None, None, 0, None)
    assert job.enqueued_at is not None  # handed to Redis by the request itself
    assert job.requested_by == facilitator_id  # the worker checks that person's right
    rows = retried_rows(db_session)
    assert len(rows) == 1
    assert (rows[0].actor_id, rows[0].object_type, rows[0].object_ids) == (
        world["users"]["admin"].id, "document_jobs", str(job.id))
    assert "Aucun échec." in section(landed.get_data(as_text=True), "titre-echecs")

    run_queue(settings, redis)  # an administrator's retry is built, not refused
    job = reload(db_session, DocumentJob, job.id)
    assert job.status == "done" and job.document_id is not None


@pytest.mark.parametrize("status", ["queued", "running", "done"])
def test_a_job_that_has_not_failed_is_not_retried(app, world, db_session, redis, status):
    job = DocumentJob(meeting_id=world["meeting"].id, kind="agenda", content_version=1,
                      status=status, step="mise en page", attempts=1,
                      requested_by=world["users"]["facilitator"].id)
    db_session.add(job)
    db_session.commit()

    landed = post(client_as(app, "admin"), f"/admin/travaux/{job.id}/relancer", form_url=PAGE)
    assert "Seule une génération en échec peut être relancée" in flash_text(landed)
    job = reload(db_session, DocumentJob, job.id)
    assert (job.status, job.step, job.attempts, job.enqueued_at) == (
        status, "mise en page", 1, None)
    assert retried_rows(db_session) == []


def test_an_unknown_job_is_not_found(app, world):
    client = client_as(app, "admin")
    assert client.post("/admin/travaux/999999/relancer",
                       data={"csrf_token": csrf_token(client, PAGE)}).status_code == 404


def test_jobs_a_dead_worker_or_a_lost_queue_left_behind_show_as_stuck(app, world, db_session):
    meeting, now = world["meeting"], utcnow()

    def job(kind, **fields):
        row = DocumentJob(meeting_id=meeting.id, kind=kind, content_version=1, **fields)
        db_session.add(row)
        db_session.flush()
        return row

    dead = job("agenda", status="running", started_at=now - timedelta(minutes=3),
               lease_until=now - timedelta(minutes=2), attempts=1)
    lost = job("dossier", status="queued", enqueued_at=now - timedelta(minutes=20))
    unsent = job("attendance", status="queued", created_at=now - timedelta(hours=1))
    job("minutes", status="running", lease_until=now + timedelta(seconds=20))  # alive
    job("feedback", status="queued", enqueued_at=now)  # just handed over
    job("information", status="queued")  # just asked for: the request sends it at once
    db_session.commit()

    stuck = job_board.stuck_jobs(db_session)
    assert [(s.job.id, s.reason) for s in stuck] == [
        (dead.id, "lease_expired"), (lost.id, "not_started"), (unsent.id, "never_sent")]
    assert stuck[0].since == dead.lease_until

    page = section(client_as(app, "admin").get(PAGE).get_data(as_text=True), "titre-bloquees")
    assert f"<td>{dead.id}</td><td>Ordre du jour</td><td>En cours</td>" in page
    assert "Bail expiré" in page
    assert f"<td>{lost.id}</td><td>Dossier de séance</td><td>En attente</td>" in page
    assert f"<td>{unsent.id}</td><td>Feuille d&#39;émargement</td><td>En attente</td>" in page
    assert "Transmise à la file d&#39;attente mais jamais démarrée" in page
    assert "Jamais transmise" in page
    assert page.count("<tr><td>") == 3


def test_live_workers_show_their_pdf_capability_and_key_versions(app, world, db_session):
    heartbeat.record(db_session, "worker-a", "worker", {"content": [1, 2], "audit": [1],
                                                        "jobs": [1]}, converts_pdf=True)
    heartbeat.record(db_session, "worker-b", "worker", {"content": [2]}, converts_pdf=None)
    heartbeat.record(db_session, "gone", "worker", {"content": [1]},
                     now=utcnow() - timedelta(minutes=5), converts_pdf=False)
    heartbeat.record(db_session, "web", "intake", {"identity": [7]})
    db_session.commit()
    assert len(job_board.live_workers(db_session)) == 2

    page = client_as(app, "admin").get(PAGE).get_data(as_text=True)
    workers = section(page, "titre-services")
    assert "Aucun service de génération actif" not in page
    assert socket.gethostname()[:64] in workers
    assert "<td>oui</td>" in workers and "<td>inconnue</td>" in workers
    assert "<td>non</td>" not in workers  # the one not seen for 5 minutes is not live
    assert "content v1, v2 · audit v1 · jobs v1" in workers
    assert "identity" not in workers  # the web process is not a worker


def test_the_page_says_so_when_no_worker_is_live(app, world, db_session):
    heartbeat.record(db_session, "web", "intake", {"identity": [1]})
    db_session.commit()
    page = client_as(app, "admin").get(PAGE).get_data(as_text=True)
    assert "Aucun service de génération actif : les documents attendent." in page


@pytest.mark.parametrize("role", ["referent", "facilitator", "director", "dpo"])
def test_only_administrators_see_or_retry_jobs(app, world, db_session, role):
    job = failed_agenda(db_session, world)
    client = client_as(app, role)
    assert client.get(PAGE).status_code == 403
    assert client.post(f"/admin/travaux/{job.id}/relancer",
                       data={"csrf_token": csrf_token(client, "/")}).status_code == 403
    assert reload(db_session, DocumentJob, job.id).status == "failed"
    assert "/admin/travaux" not in client.get("/").get_data(as_text=True)
