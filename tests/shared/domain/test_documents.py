"""Document jobs in the domain: re-arming a job, by its requester or by an administrator."""

import pytest
from sqlalchemy import select

from shared.domain import audit, documents
from shared.encrypted import Vault
from shared.errors import InvalidTransitionError
from shared.models import AuditEvent, DocumentJob


@pytest.fixture
def admin_vault(world, db_session, keyring):
    return Vault(db_session, keyring, audit.Actor(world["users"]["admin"].id))


def failed_job(db_session, world) -> DocumentJob:
    job = documents.request_document(db_session, world["meeting"], "agenda",
                                     world["users"]["facilitator"].id)
    documents.mark_sent(db_session, job)
    assert documents.claim(db_session, job.uuid) is not None
    documents.set_step(db_session, job, "mise en page")
    documents.fail(db_session, job, "template", "Le modèle de document est invalide.")
    return job


def retried(db_session) -> list[AuditEvent]:
    return db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "document_job_retried")).all()


def test_a_failed_job_is_queued_again_as_if_just_requested_and_audited(
        world, db_session, admin_vault):
    job = failed_job(db_session, world)
    assert (job.attempts, job.enqueued_at is not None) == (1, True)

    documents.retry_failed_job(db_session, admin_vault, job)

    assert (job.status, job.step, job.error_code, job.error_message, job.enqueued_at,
            job.attempts, job.document_id) == ("queued", "", None, None, None, 0, None)
    # Still in the facilitator's name: the worker checks that their right still holds.
    assert job.requested_by == world["users"]["facilitator"].id
    assert documents.jobs_to_send(db_session) == [job]  # the outbox sends it
    [row] = retried(db_session)
    assert (row.actor_id, row.object_type, row.object_ids) == (
        world["users"]["admin"].id, "document_jobs", str(job.id))


@pytest.mark.parametrize("status", ["queued", "running", "done"])
def test_only_a_failed_job_can_be_retried(world, db_session, admin_vault, status):
    job = DocumentJob(meeting_id=world["meeting"].id, kind="agenda", content_version=1,
                      status=status, step="mise en page", attempts=1)
    db_session.add(job)
    db_session.flush()
    with pytest.raises(InvalidTransitionError, match="Seule une génération en échec"):
        documents.retry_failed_job(db_session, admin_vault, job)
    assert (job.status, job.step, job.attempts) == (status, "mise en page", 1)
    assert retried(db_session) == []


def test_a_failed_job_of_a_session_changed_since_is_not_retried(world, db_session,
                                                                 admin_vault):
    """Built now, it would carry today's data under the old version's name."""
    job = failed_job(db_session, world)
    world["meeting"].content_version += 1
    db_session.flush()
    with pytest.raises(InvalidTransitionError, match="modifiée depuis"):
        documents.retry_failed_job(db_session, admin_vault, job)
    assert (job.status, job.error_code) == ("failed", "template")
    assert retried(db_session) == []


def test_asking_again_for_a_failed_document_re_arms_the_same_job(world, db_session):
    job = failed_job(db_session, world)
    director_id = world["users"]["director"].id
    again = documents.request_document(db_session, world["meeting"], "agenda", director_id)
    assert again is job
    assert (job.status, job.step, job.error_code, job.enqueued_at, job.attempts,
            job.requested_by) == ("queued", "", None, None, 0, director_id)
    assert retried(db_session) == []  # the requester's own request: document_requested


def test_a_failed_dossier_is_retried_only_while_every_text_is_known_clear(
        world, db_session, admin_vault):
    meeting, sheets = world["meeting"], world["sheets"]
    job = DocumentJob(meeting_id=meeting.id, kind="dossier",
                      content_version=meeting.content_version, status="failed",
                      error_code="template", attempts=1)
    db_session.add(job)
    for sheet in sheets:
        sheet.open_findings = 0
    sheets[1].open_findings = None  # edited since its last review: its texts are unchecked
    db_session.flush()

    with pytest.raises(InvalidTransitionError, match="redemande depuis la page de la séance"):
        documents.retry_failed_job(db_session, admin_vault, job)
    assert job.status == "failed" and retried(db_session) == []

    sheets[1].open_findings = 2  # reviewed, findings left
    with pytest.raises(InvalidTransitionError):
        documents.retry_failed_job(db_session, admin_vault, job)

    sheets[1].open_findings = 0
    documents.retry_failed_job(db_session, admin_vault, job)
    assert job.status == "queued" and len(retried(db_session)) == 1
