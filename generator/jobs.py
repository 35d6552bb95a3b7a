"""RQ entry points: ids in, a stored encrypted document out; never personal data in Redis.

Deterministic failures (a broken template) are recorded on the job row in French and not
retried; anything else is released for RQ's retry, and a killed worker's row is picked up
again by the sweep once its lease expires (a live worker extends it: ``lease_kept``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import redis
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from generator import mail, runtime
from generator.contexts import BUILDERS
from generator.pdf import PdfError
from generator.render import TEMPLATES, RenderError, render, template_path
from shared import metrics
from shared.crypto import CryptoError, IntegrityError
from shared.db import utcnow
from shared.domain import audit, documents, notifications
from shared.domain.sheets import referent_may_edit
from shared.encrypted import Vault
from shared.errors import DomainError, InvalidTransitionError
from shared.models import (
    DocumentJob,
    GeneratedDocument,
    Meeting,
    Sheet,
    TemplateVersion,
    User,
)
from shared.models.document import DOCUMENT_KINDS, SHEET_ONLY_KINDS
from shared.queue import (
    DOCUMENT_JOB_FUNCTION,
    DOCUMENT_RETRY_DELAYS,
    DOCUMENTS_QUEUE,
    MAIL_JOB_FUNCTION,
    MAIL_QUEUE,
    PayloadError,
    enqueue_mail_job,
    redis_connection,
    verify_payload,
)

log = logging.getLogger(__name__)


class RefusedJobError(Exception):
    """A job in Redis that names another function, a callback or an instance."""


class TransientFailureError(Exception):
    """What RQ gets (and stores in Redis) for a run to retry: the kind of error only. The
    original's message could quote a value being handled, a personal one."""


class RequesterRefusedError(Exception):
    """The user who asked may no longer have this document built (role, circonscription or
    account changed meanwhile): a lasting refusal, unlike an operating system's
    PermissionError, which is retried like any other transient failure."""


class LeaseLostError(Exception):
    """This run outlived its lease and another worker took the job over: its result is
    dropped, the other run's stands (a job builds one document)."""


def _frames(exc: BaseException) -> str:
    """Where ``exc`` was raised, for the log: files, lines and code, not its message."""
    return "".join(traceback.format_tb(exc.__traceback__))


class AllowlistedJob(Job):
    """Only ``run_document_job`` and ``run_mail_job`` may run: RQ would otherwise import and
    call whatever function name a job in Redis carries, so whoever can write to Redis could
    run code (docs/security.md, rule 9). Callbacks and bound instances are refused too."""

    def _refuse_if_foreign(self) -> None:
        foreign = (self.func_name not in ALLOWED or self.instance is not None
                   or self._success_callback_name or self._failure_callback_name
                   or self._stopped_callback_name)
        if foreign:
            log.warning("refused a job naming a function other than the document job")
            with contextlib.suppress(Exception):  # the refusal stands even if this fails
                rt = runtime.current()
                with rt.sessions() as session:
                    audit.record(session, rt.keyring, audit.WORKER, "job_refused",
                                 purpose="fonction non autorisée")
                    session.commit()
            raise RefusedJobError("job refused: only the document and mail jobs may run")

    @property
    def func(self):
        self._refuse_if_foreign()
        return ALLOWED[self.func_name]

    @property
    def success_callback(self):
        self._refuse_if_foreign()
        return None

    @property
    def failure_callback(self):
        return None  # never import a name from Redis, even to report a failure

    @property
    def stopped_callback(self):
        return None

# Runs of one job before it is reported as failed: the first and RQ's retries, so that the
# user learns of a lasting failure after the last retry, not at the sweep's next resend.
MAX_ATTEMPTS = 1 + len(DOCUMENT_RETRY_DELAYS)
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FILENAMES = {"agenda": "ordre-du-jour", "dossier": "dossier-de-seance",
             "attendance": "feuille-emargement", "minutes": "proces-verbal",
             "feedback": "fiche-retour", "information": "note-information"}


# What the facilitator reads when a job cannot be built (documents.fail), by cause.
DATA_MISSING = ("Les données de la séance ne permettent pas ce document (situation absente "
                "de l'ordre du jour ?).")
INTEGRITY_FAILED = ("Une donnée chiffrée nécessaire à ce document n'a pas passé le contrôle "
                    "d'intégrité (donnée altérée ou déplacée) : le document n'a pas été "
                    "produit. L'incident est inscrit au journal d'audit ; prévenez "
                    "l'administrateur.")
KEY_UNAVAILABLE = ("Le générateur de documents ne détient pas la clé de chiffrement "
                   "nécessaire à ce document : prévenez l'administrateur (rotation des clés "
                   "en cours ?).")


def _audit_refusal(session: Session, rt: runtime.Runtime, purpose: str, *,
                   object_type: str = "", object_ids: list[int] | None = None) -> None:
    """Every refused job leaves an audit row (docs/security.md, rule 9), ids and reason only."""
    log.warning("refused job: %s", purpose)
    audit.record(session, rt.keyring, audit.WORKER, "job_refused", object_type=object_type,
                 object_ids=object_ids or [], purpose=purpose)
    session.commit()


def _payload_refused(session: Session, rt: runtime.Runtime, payload: dict,
                     queue: str = DOCUMENTS_QUEUE) -> bool:
    """A forged or expired payload is refused and audited."""
    try:
        verify_payload(rt.keyring, payload, queue=queue)
    except PayloadError as exc:
        _audit_refusal(session, rt, str(exc))
        return True
    return False


@contextlib.contextmanager
def lease_kept(rt: runtime.Runtime, extend: Callable[[Session, timedelta], bool]
               ) -> Iterator[None]:
    """While the block runs, push the claim's lease back every third of it (``extend``, a
    compare-and-swap on this very attempt): a live worker keeps its job however long the job
    runs, a dead one's lease runs out within one lease and the next sweep hands it over.

    The thread is not waited for: once told to stop it makes at most one more attempt, which
    finds the job ended and changes nothing."""
    lease = timedelta(seconds=rt.settings.job_lease_seconds)
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            try:
                with rt.sessions() as session:
                    kept = extend(session, lease)
                    session.commit()
            except SQLAlchemyError as exc:  # the next attempt may pass; the lease is long
                log.warning("lease not extended (%s)", type(exc).__name__)
                continue
            if not kept:
                return

    threading.Thread(target=keep, name="lease", daemon=True).start()
    try:
        yield
    finally:
        stop.set()


def run_document_job(payload: dict) -> dict | None:
    """Build the document of one DocumentJob row; returns ids only."""
    with metrics.job_observed("document") as observation:
        result = _run_document_job(payload, observation)
        observation.outcome = result["status"] if result else "refused"
        return result


def _run_document_job(payload: dict, observation: metrics.JobObservation) -> dict | None:
    rt = runtime.current()
    with rt.sessions() as session:
        if _payload_refused(session, rt, payload):
            return None
        job = documents.claim(session, str(payload["job"]),
                              lease=timedelta(seconds=rt.settings.job_lease_seconds))
        session.commit()
        if job is None:  # done already, or another worker holds a live lease: single use
            _audit_refusal(session, rt, "replayed payload")
            return None
        observation.kind = job.kind
        try:
            if payload["requester"] != job.requested_by:  # a stale payload of another request
                raise RequesterRefusedError
            job_id, attempt = job.id, job.attempts
            with lease_kept(rt, lambda other, lease: documents.extend_lease(other, job_id,
                                                                             attempt, lease)):
                document = _build(session, rt, job, job.requested_by)
        except (LookupError, ValueError, CryptoError) as exc:  # can never build this document
            session.rollback()
            if isinstance(exc, IntegrityError):  # the vault has audited which value
                code, message = "integrity", INTEGRITY_FAILED
            elif isinstance(exc, CryptoError):
                code, message = "key", KEY_UNAVAILABLE
            else:
                code, message = "data", DATA_MISSING
            documents.fail(session, job, code, message)
            session.commit()
            log.error("job %s failed: %s", job.id, type(exc).__name__)
            return {"job": job.uuid, "status": "failed"}
        except DomainError as exc:  # the request no longer holds: its French message says why
            session.rollback()
            documents.fail(session, job, "state", exc.message)
            session.commit()
            log.warning("job %s failed: %s", job.id, type(exc).__name__)
            return {"job": job.uuid, "status": "failed"}
        except RenderError as exc:
            session.rollback()
            documents.fail(session, job, "template",
                           f"Le modèle de document est invalide ({exc.place}). "
                           "Le document précédent reste disponible.")
            session.commit()
            log.error("job %s failed: template %s", job.id, exc.template)
            return {"job": job.uuid, "status": "failed"}
        except LeaseLostError:
            session.rollback()
            log.warning("job %s: lease lost to another worker, result dropped", job.id)
            return {"job": job.uuid, "status": "superseded"}
        except RequesterRefusedError:
            session.rollback()
            documents.fail(session, job, "forbidden",
                           "Le demandeur n'a plus le droit de générer ce document.")
            _audit_refusal(session, rt, "requester no longer allowed",
                           object_type="document_jobs", object_ids=[job.id])
            return {"job": job.uuid, "status": "failed"}
        except Exception as exc:
            session.rollback()
            kind = type(exc).__name__
            if job.attempts >= MAX_ATTEMPTS:  # not so transient after all: say so, stop
                documents.fail(session, job, "attempts", "La génération a échoué plusieurs "
                               "fois de suite. Réessayez plus tard ou contactez l'assistance.")
                session.commit()
                log.error("job %s failed after %d attempts (%s)\n%s", job.id, job.attempts,
                          kind, _frames(exc))
                return {"job": job.uuid, "status": "failed"}
            documents.release_for_retry(session, job)
            session.commit()
            log.error("job %s: transient failure (%s), released for retry\n%s", job.id, kind,
                      _frames(exc))
            raise TransientFailureError(kind) from None
        log.info("job %s done: document %s", job.id, document.id)
        return {"job": job.uuid, "document": document.uuid, "status": "done"}


def _requester_may_generate(session: Session, requester_id: int | None, meeting: Meeting,
                            kind: str) -> bool:
    if requester_id is None:  # the CLI on the server itself
        return True
    user = session.get(User, requester_id)
    if user is None or not user.active:
        return False
    # Directors sign the minutes: their visa regenerates the final version.
    return meeting.circonscription_id in user.circonscription_ids or (
        kind == "minutes" and user.has_role("director"))


def template_source(session: Session, settings, kind: str) -> tuple[int | None, Path | bytes]:
    """The active uploaded version of a template, else the built-in file."""
    version = session.scalar(select(TemplateVersion).where(
        TemplateVersion.kind == kind, TemplateVersion.active.is_(True)))
    if version is not None:
        return version.id, version.body
    return None, template_path(settings.templates_dir, kind)


def _referent_may_generate(session: Session, requester_id: int | None, sheet: Sheet) -> bool:
    if requester_id is None:  # the CLI on the server itself
        return True
    user = session.get(User, requester_id)
    return user is not None and user.active and referent_may_edit(user, sheet)


def _build(session: Session, rt: runtime.Runtime, job: DocumentJob,
           requester_id: int | None) -> GeneratedDocument:
    sheet = session.get(Sheet, job.sheet_id) if job.sheet_id else None
    if job.kind in SHEET_ONLY_KINDS:  # the information note: a sheet, no session
        meeting = None
        if sheet is None or not _referent_may_generate(session, requester_id, sheet):
            raise RequesterRefusedError
    else:
        meeting = session.get(Meeting, job.meeting_id)
        if meeting is None or not _requester_may_generate(session, requester_id, meeting,
                                                          job.kind):
            raise RequesterRefusedError
        if meeting.state not in documents.KIND_STATES[job.kind]:  # e.g. cancelled meanwhile
            raise InvalidTransitionError(f"« {DOCUMENT_KINDS[job.kind]} » non produit : depuis la "
                                         f"demande, la séance est passée à l'état "
                                         f"« {meeting.state_label} ».")
    vault = Vault(session, rt.keyring, audit.WORKER)
    builder, _keys = BUILDERS[job.kind]
    documents.set_step(session, job, "préparation des données")
    session.commit()
    # Printed as v1, v2… per kind (and sheet): the session's content version is its edit
    # counter, meaningless to a reader.
    number = documents.next_number(session, job.meeting_id, job.kind, job.sheet_id)
    # The information note prints the instance's DPO contact, from the settings.
    extra = {"dpo_contact": rt.settings.dpo_contact} if job.kind == "information" else {}
    context = builder(session, vault, meeting, number, date.today(), sheet, **extra)
    documents.set_step(session, job, "mise en page")
    session.commit()
    version_id, source = template_source(session, rt.settings, job.kind)
    body = render(source, context, TEMPLATES[job.kind])
    pdf = None
    if rt.pdf is not None and rt.pdf.available:
        documents.set_step(session, job, "conversion PDF")
        session.commit()
        try:
            pdf = rt.pdf.convert(body)
        except PdfError as exc:  # the .docx stays available; "relancer" asks for it again
            log.warning("job %s: PDF conversion failed (%s)", job.id, exc.reason)
    documents.set_step(session, job, "chiffrement et enregistrement")
    stem = FILENAMES[job.kind] + (f"-{meeting.starts_at:%Y-%m-%d}" if meeting else "")
    if sheet is not None:
        stem += f"-{sheet.reference}"
    document = GeneratedDocument(
        meeting_id=job.meeting_id, kind=job.kind, content_version=job.content_version,
        sheet_id=sheet.id if sheet is not None else None, template_version_id=version_id,
        number=number, filename=f"{stem}-v{number}.docx", media_type=DOCX, size=len(body),
        body=b"", pdf_size=len(pdf) if pdf is not None else None,
    )
    session.add(document)
    session.flush()
    vault.seal_blob(document, "body", body)
    if pdf is not None:
        vault.seal_blob(document, "pdf_body", pdf)
    if not documents.complete(session, job, document):
        raise LeaseLostError
    if job.kind == "feedback":  # the referent learns it is ready, in this transaction
        notifications.feedback_ready(session, job)
    audit.record(session, rt.keyring, audit.WORKER, "document_generated",
                 object_type="generated_documents", object_ids=[document.id],
                 purpose=f"job {job.id}")
    session.commit()
    return document


def run_mail_job(payload: dict) -> dict | None:
    """Send one notification: claimed, composed, handed over, then marked sent."""
    with metrics.job_observed("mail") as observation:
        result = _run_mail_job(payload, observation)
        observation.outcome = result["status"] if result else "refused"
        return result


def _run_mail_job(payload: dict, observation: metrics.JobObservation) -> dict | None:
    rt = runtime.current()
    with rt.sessions() as session:
        if _payload_refused(session, rt, payload, MAIL_QUEUE):
            return None
        row = notifications.claim(session, str(payload["job"]),
                                  lease=timedelta(seconds=rt.settings.job_lease_seconds))
        session.commit()
        if row is None:  # sent already, not due yet, or another worker is on it
            _audit_refusal(session, rt, "replayed payload")
            return None
        observation.kind = row.kind
        row_id, attempt = row.id, row.attempts
        with lease_kept(rt, lambda other, lease: notifications.extend_lease(other, row_id,
                                                                             attempt, lease)):
            return _send_mail(session, rt, row)


def _send_mail(session: Session, rt: runtime.Runtime, row) -> dict:
    settings = rt.settings
    recipient = notifications.recipient_address(row)
    if not recipient:
        notifications.fail(session, row, "recipient", "Destinataire désactivé ou sans adresse.")
        session.commit()
        return {"notification": row.uuid, "status": "failed"}
    attachment = body = None
    if row.document_job_id is not None:
        job = session.get(DocumentJob, row.document_job_id)
        if job.status == "failed":
            notifications.fail(session, row, "attachment",
                               "Le document à joindre n'a pas pu être généré.")
            session.commit()
            return {"notification": row.uuid, "status": "failed"}
        if job.status != "done":  # the agenda is still being built
            notifications.wait_for_attachment(session, row, settings.mail_retry_seconds)
            session.commit()
            _schedule(session, rt, row)
            return {"notification": row.uuid, "status": "waiting"}
        attachment = job.document
        body = Vault(session, rt.keyring, audit.WORKER).open_blob(attachment, "body")
    message = mail.compose(session, settings, row, recipient, attachment, body)
    try:
        mail.deliver(settings, message, recipient, row.uuid)
    except mail.MailError as exc:
        session.rollback()
        text = f"Refusé par le serveur de messagerie (code {exc.code})."
        if not exc.temporary:
            notifications.fail(session, row, exc.code, text)
            session.commit()
            log.error("notification %s failed permanently (%s)", row.id, exc.code)
            return {"notification": row.uuid, "status": "failed"}
        delay = notifications.retry_later(session, row, settings.mail_retry_seconds,
                                          exc.code, text)
        session.commit()
        log.warning("notification %s: temporary failure (%s), attempt %d", row.id, exc.code,
                    row.attempts)
        if delay is not None:
            _schedule(session, rt, row)
        return {"notification": row.uuid, "status": "retry" if delay else "failed"}
    # Accepted by the server. A crash before this commit sends it again (same Message-ID).
    if notifications.mark_sent(session, row):
        session.commit()
    else:
        session.rollback()
        log.warning("notification %s: lease lost while sending", row.id)
    log.info("notification %s sent", row.id)
    return {"notification": row.uuid, "status": "sent"}


def _schedule(session: Session, rt: runtime.Runtime, row) -> None:
    """Ask RQ's scheduler for the next attempt; if Redis is down the sweep sends it later."""
    try:
        enqueue_mail_job(redis_connection(rt.settings), rt.keyring, row.uuid,
                         max(row.next_attempt_at - utcnow(), timedelta(seconds=1)))
    except redis.RedisError:
        log.warning("notification %s: next attempt left to the sweep", row.id)
        return
    row.enqueued_at = row.next_attempt_at  # the sweep leaves it to RQ's scheduler
    session.commit()


ALLOWED = {DOCUMENT_JOB_FUNCTION: run_document_job, MAIL_JOB_FUNCTION: run_mail_job}
