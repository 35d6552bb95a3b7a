"""Document requests as an outbox: the row is the truth, the queue only a wake-up call."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import deidentify
from shared.db import utcnow
from shared.domain import audit
from shared.domain.reference import reference_labels
from shared.domain.sheets import read_values_many
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError, NotFoundError
from shared.models import (
    AgendaItem,
    Decision,
    DocumentJob,
    GeneratedDocument,
    Meeting,
    MinutesCorrection,
    MinutesReading,
    MinutesVisa,
    Sheet,
)
from shared.models.document import (
    DOCUMENT_KINDS,
    INSTITUTIONS,
    PER_SHEET_KINDS,
)
from shared.models.meeting import AGENDA_PARTS, FORMAL_DECISION

# A running job whose lease has passed belongs to a dead worker and is run again (the worker
# running a job extends its lease while it runs: ``extend_lease``).
LEASE = timedelta(seconds=30)
# A queued job sent to Redis this long ago without starting is sent again (Redis lost it).
RESEND_AFTER = timedelta(minutes=10)

# Once « Clore la saisie des avis » is done: the dossier and the émargement can still be
# produced, as archive copies (e.g. one was never printed before the session).
AFTER_AVIS = {"avis_saisis", "pv_redige", "pv_en_signature", "pv_signe", "cloturee"}
ARCHIVE_KINDS = ("dossier", "attendance")

# The session states in which each document can be (re)generated.
KIND_STATES = {
    "agenda": {"planifiee", "odj_en_construction", "convoquee", "tenue"},
    "dossier": {"odj_en_construction", "convoquee", "tenue"} | AFTER_AVIS,
    "attendance": {"convoquee", "tenue"} | AFTER_AVIS,
    "minutes": {"avis_saisis", "pv_redige", "pv_en_signature", "pv_signe"},
    "feedback": AFTER_AVIS,
}


def is_archive_copy(meeting: Meeting, kind: str) -> bool:
    """A dossier or émargement produced after the avis were closed: an archive copy."""
    return kind in ARCHIVE_KINDS and meeting.state in AFTER_AVIS


def never_produced(session: Session, meeting: Meeting) -> list[str]:
    """The French names of the session documents (dossier, émargement) never built: the
    page warns before « Clore la saisie des avis »."""
    return [DOCUMENT_KINDS[kind] for kind in ARCHIVE_KINDS
            if latest_document(session, meeting.id, kind) is None]


REVIEW_PURPOSE = "relecture des textes avant le dossier de séance"


def check_dossier_texts(vault: Vault, meeting: Meeting) -> None:
    """The dossier carries no free text with an unhandled high-confidence finding (a name,
    a number…): refused naming the sheets. Runs where the model is (intake, the CLI); the
    worker, which never analyses text, builds only what passed here."""
    sheets = _dossier_sheets(vault.session, meeting)
    # Sheets reviewed at submission kept their count; only texts changed since are analysed.
    unknown = [sheet for sheet in sheets if sheet.open_findings is None]
    values = read_values_many(vault, unknown, purpose=REVIEW_PURPOSE,
                              columns=("situation_data", "sensitive_data"))
    for sheet, opened in zip(unknown, values, strict=True):
        sheet.open_findings = len(deidentify.unhandled_high_confidence(opened))
    blocked = [sheet.reference for sheet in sheets if sheet.open_findings]
    if blocked:
        raise InvalidInputError(
            "Le dossier de séance ne peut pas être généré : des textes contiennent encore des "
            "éléments identifiants non traités (fiches " + ", ".join(blocked) + "). "
            "Faites-les relire par le ou la référent·e, puis relancez la génération.")


def _dossier_sheets(session: Session, meeting: Meeting) -> list[Sheet]:
    """The sheets whose texts the dossier carries, in agenda order."""
    return list(session.scalars(  # one query: this runs on every request
        select(Sheet).join(AgendaItem, AgendaItem.sheet_id == Sheet.id)
        .where(AgendaItem.meeting_id == meeting.id,
               AgendaItem.part.in_(("situation", "icag")), AgendaItem.outcome != "ajourne")
        .order_by(AgendaItem.position, AgendaItem.id)))


def request_document(session: Session, meeting: Meeting, kind: str,
                     requester_id: int | None, sheet: Sheet | None = None,
                     rebuild: bool = False, vault: Vault | None = None) -> DocumentJob:
    """Return the job for (meeting, kind, content version[, sheet]), creating or re-arming it.

    Idempotent: asking twice for the same content gives the same job; a failed job is
    queued again ("relancer"); ``rebuild`` builds a finished one again (a new template, the
    PDF now available, answers recorded since), keeping the earlier file. The dossier needs
    ``vault`` (intake's) to check its texts first.
    """
    if kind not in KIND_STATES:
        raise InvalidInputError("Type de document inconnu.")
    if kind == "dossier":
        if vault is None:
            raise TypeError("the dossier's texts are checked with intake's vault")
        check_dossier_texts(vault, meeting)
    if meeting.state not in KIND_STATES[kind]:
        raise InvalidTransitionError(f"« {DOCUMENT_KINDS[kind]} » ne peut pas être généré : la "
                                     f"séance est « {meeting.state_label} ».")
    if (kind in PER_SHEET_KINDS) != (sheet is not None):
        raise InvalidInputError("Ce document se génère pour une situation de la séance.")
    if sheet is not None and sheet.id not in feedback_sheet_ids(session, meeting):
        raise InvalidInputError("Pas d'avis enregistré ni d'ajournement pour cette situation à "
                                "cette séance.")
    subject = str(sheet.id) if sheet is not None else ""
    job = session.scalars(select(DocumentJob).where(
        DocumentJob.meeting_id == meeting.id, DocumentJob.kind == kind,
        DocumentJob.content_version == meeting.content_version,
        DocumentJob.subject == subject)).first()
    if job is None:
        job = DocumentJob(meeting_id=meeting.id, kind=kind, subject=subject,
                          sheet_id=sheet.id if sheet is not None else None,
                          content_version=meeting.content_version, requested_by=requester_id)
        session.add(job)
    elif job.status == "failed" or (rebuild and job.status == "done"):
        _requeue(job, requester_id)
    session.flush()
    return job


def _requeue(job: DocumentJob, requester_id: int | None) -> None:
    """Arm a finished job again as if just requested: no longer sent (the outbox sends it),
    no attempt made, no error, no document (a rebuild keeps the earlier file, unlinked)."""
    job.status, job.step, job.error_code, job.error_message = "queued", "", None, None
    job.enqueued_at, job.requested_by, job.attempts = None, requester_id, 0
    job.document_id = None


def retry_failed_job(session: Session, vault: Vault, job: DocumentJob) -> None:
    """An administrator queues a failed job again (« Travaux » page), audited
    (``document_job_retried``).

    The job keeps the requester it had: the worker checks, when it runs, that the requester
    may still have this document, and an administrator holds no circonscription, so a job
    in the administrator's name would always be refused. The audit row names the
    administrator. The session's state is checked by the worker too (as for any job).

    The worker builds only a dossier whose texts passed ``check_dossier_texts``; that check
    reads the texts, which an administrator never does (nor sees the sheets' references
    its refusal names). A dossier is retried here only while every text of the session is
    known clear (reviewed since its last change, nothing left); else the facilitator asks
    for it again from the session's page, where the check runs."""
    if job.status != "failed":
        raise InvalidTransitionError(f"Seule une génération en échec peut être relancée : "
                                     f"celle-ci est « {job.status_label} ».")
    meeting = session.get(Meeting, job.meeting_id) if job.meeting_id is not None else None
    if meeting is not None and job.content_version != meeting.content_version:
        # Its content was replaced since: built now, it would carry today's data under the
        # old version's name, beside the current one.
        raise InvalidTransitionError(
            "Cette demande porte sur une version de la séance modifiée depuis : la ou le "
            "chargé·e d'animation redemande le document depuis la page de la séance.")
    if job.kind == "dossier" and any(sheet.open_findings != 0
                                   for sheet in _dossier_sheets(session, meeting)):
        raise InvalidTransitionError(
            "Ce dossier de séance ne peut pas être relancé ici : des textes de la séance ont "
            "changé depuis leur dernière relecture ou contiennent des éléments identifiants. "
            "La ou le chargé·e d'animation le redemande depuis la page de la séance.")
    _requeue(job, job.requested_by)
    session.flush()
    audit.record(session, vault.keyring, vault.actor, "document_job_retried",
                 object_type="document_jobs", object_ids=[job.id])


def ask_for_document(session: Session, vault: Vault, meeting: Meeting, kind: str,
                     sheet: Sheet | None = None, *, rebuild: bool = False) -> DocumentJob:
    """Someone asks for a session document (the meeting page's button, ``icli generate``):
    ``request_document`` in their name, audited (``document_requested``).

    A refused dossier keeps the review counts of its texts: the caller commits even when
    this raises (nothing else is written before a refusal)."""
    job = request_document(session, meeting, kind, vault.actor.user_id, sheet, rebuild=rebuild,
                           vault=vault)
    audit.record(session, vault.keyring, vault.actor, "document_requested",
                 object_type="document_jobs", object_ids=[job.id])
    return job


def feedback_sheet_ids(session: Session, meeting: Meeting) -> list[int]:
    """The sheets of the session that get a fiche retour: those with an avis, and those
    adjourned (the fiche says why and when they come back), in agenda order."""
    decided = set(session.scalars(select(Decision.sheet_id).where(
        Decision.meeting_id == meeting.id)))
    return [item.sheet_id for item in sorted(meeting.items, key=lambda i: (i.position, i.id))
            if item.sheet_id and (item.sheet_id in decided or item.outcome == "ajourne")]


def request_information_note(session: Session, sheet: Sheet,
                             requester_id: int | None) -> DocumentJob:
    """The person's information note for one sheet (no session): one job per sheet, queued
    again when it failed or when asked again once built (the sheet's motif may have changed)."""
    job, _document = information_note(session, sheet.id)
    if job is not None and job.status in ("queued", "running"):
        return job
    job = DocumentJob(meeting_id=None, kind="information", subject=str(sheet.id),
                      sheet_id=sheet.id, content_version=1, requested_by=requester_id)
    session.add(job)
    session.flush()
    return job


def ask_for_information_note(session: Session, vault: Vault, sheet: Sheet) -> DocumentJob:
    """The referent asks for the person's information note: audited (``document_requested``)."""
    job = request_information_note(session, sheet, vault.actor.user_id)
    audit.record(session, vault.keyring, vault.actor, "document_requested",
                 object_type="document_jobs", object_ids=[job.id])
    return job


def information_note(session: Session, sheet_id: int
                     ) -> tuple[DocumentJob | None, GeneratedDocument | None]:
    """The latest request for a sheet's information note, and the latest note built."""
    job = session.scalars(select(DocumentJob).where(
        DocumentJob.kind == "information", DocumentJob.sheet_id == sheet_id)
        .order_by(DocumentJob.id.desc()).limit(1)).first()
    document = session.scalars(select(GeneratedDocument).where(
        GeneratedDocument.kind == "information", GeneratedDocument.sheet_id == sheet_id)
        .order_by(GeneratedDocument.id.desc()).limit(1)).first()
    return job, document


def jobs_to_send(session: Session, now: datetime | None = None,
                 meeting_id: int | None = None) -> list[DocumentJob]:
    """Jobs that need (re)sending: never sent, lost by Redis, or abandoned by a dead worker."""
    now = now or utcnow()
    query = select(DocumentJob).where(or_(
        (DocumentJob.status == "queued") & (
            DocumentJob.enqueued_at.is_(None) | (DocumentJob.enqueued_at < now - RESEND_AFTER)),
        (DocumentJob.status == "running") & (DocumentJob.lease_until < now),
    )).order_by(DocumentJob.id)
    if meeting_id is not None:
        query = query.where(DocumentJob.meeting_id == meeting_id)
    return list(session.scalars(query))


def forget_enqueued(session: Session) -> int:
    """Redis lost its queues: every queued job counts as never sent (``jobs_to_send``)."""
    return session.execute(update(DocumentJob).where(DocumentJob.status == "queued",
                                                     DocumentJob.enqueued_at.is_not(None))
                           .values(enqueued_at=None)).rowcount


def mark_sent(session: Session, job: DocumentJob) -> None:
    job.enqueued_at = utcnow()
    job.step = "en file d'attente"
    session.flush()


def claim(session: Session, job_uuid: str, now: datetime | None = None,
          lease: timedelta = LEASE) -> DocumentJob | None:
    """Compare-and-swap queued (or expired running) → running; None if another run has it."""
    now = now or utcnow()
    result = session.execute(
        update(DocumentJob)
        .where(DocumentJob.uuid == job_uuid)
        .where(or_(DocumentJob.status == "queued",
                   (DocumentJob.status == "running") & (DocumentJob.lease_until < now)))
        .values(status="running", started_at=now, lease_until=now + lease,
                attempts=DocumentJob.attempts + 1, step="démarrage")
    )
    if result.rowcount != 1:
        return None
    return session.scalars(select(DocumentJob).where(DocumentJob.uuid == job_uuid)
                           .execution_options(populate_existing=True)).one()


def extend_lease(session: Session, job_id: int, attempt: int, lease: timedelta) -> bool:
    """Push back the lease of this very run (its attempt number); False once the job ended or
    another run took it over."""
    result = session.execute(
        update(DocumentJob).where(DocumentJob.id == job_id, DocumentJob.status == "running",
                                  DocumentJob.attempts == attempt)
        .values(lease_until=utcnow() + lease))
    return result.rowcount == 1


def set_step(session: Session, job: DocumentJob, step: str) -> None:
    job.step = step
    session.flush()


def complete(session: Session, job: DocumentJob, document: GeneratedDocument) -> bool:
    """running → done for this very run (compare-and-swap on its attempt); False when its
    lease expired and another worker claimed the job meanwhile: that run's result wins."""
    session.flush()
    done = session.execute(
        update(DocumentJob).where(DocumentJob.id == job.id, DocumentJob.status == "running",
                                  DocumentJob.attempts == job.attempts)
        .values(status="done", step="terminé", document_id=document.id,
                finished_at=utcnow(), lease_until=None, error_code=None, error_message=None))
    if done.rowcount != 1:
        return False
    session.refresh(job)
    return True


def fail(session: Session, job: DocumentJob, code: str, message: str) -> None:
    """A deterministic failure: shown to the user in French, not retried automatically."""
    job.status, job.error_code, job.error_message = "failed", code, message[:400]
    job.finished_at, job.lease_until = utcnow(), None
    session.flush()


def release_for_retry(session: Session, job: DocumentJob) -> None:
    """A transient failure: back to the queue, RQ's retry (or the sweep) runs it again."""
    job.status, job.lease_until, job.step = "queued", None, "nouvelle tentative"
    session.flush()


def latest_jobs(session: Session, meeting_id: int) -> dict[tuple[str, str], DocumentJob]:
    """The most recent job of each (kind, subject) for a meeting."""
    jobs = session.scalars(select(DocumentJob).where(DocumentJob.meeting_id == meeting_id)
                           .order_by(DocumentJob.id)).all()
    return {(job.kind, job.subject): job for job in jobs}


def latest_document(session: Session, meeting_id: int, kind: str,
                    sheet_id: int | None = None) -> GeneratedDocument | None:
    query = select(GeneratedDocument).where(GeneratedDocument.meeting_id == meeting_id,
                                            GeneratedDocument.kind == kind)
    query = query.where(GeneratedDocument.sheet_id.is_(None) if sheet_id is None
                        else GeneratedDocument.sheet_id == sheet_id)
    return session.scalars(query.order_by(GeneratedDocument.id.desc()).limit(1)).first()


def next_number(session: Session, meeting_id: int | None, kind: str,
                sheet_id: int | None) -> int:
    """The printed version of the next document of this kind (for this sheet): v1, v2…"""
    query = select(func.count()).select_from(GeneratedDocument).where(
        GeneratedDocument.kind == kind,
        GeneratedDocument.meeting_id.is_(None) if meeting_id is None
        else GeneratedDocument.meeting_id == meeting_id,
        GeneratedDocument.sheet_id.is_(None) if sheet_id is None
        else GeneratedDocument.sheet_id == sheet_id)
    return session.scalar(query) + 1


def minutes_visas(session: Session, document: GeneratedDocument) -> list[MinutesVisa]:
    return list(session.scalars(select(MinutesVisa).where(
        MinutesVisa.document_id == document.id).order_by(MinutesVisa.id)))


SIGNED_STATES = {"pv_signe", "cloturee"}


def approved_minutes(session: Session, meeting: Meeting) -> GeneratedDocument | None:
    """The version of the minutes both institutions signed (the latest, after an erratum)."""
    if meeting.state not in SIGNED_STATES:
        return None
    for document_id in session.scalars(
            select(MinutesVisa.document_id).where(MinutesVisa.meeting_id == meeting.id)
            .group_by(MinutesVisa.document_id)
            .having(func.count(func.distinct(MinutesVisa.institution)) == len(INSTITUTIONS))
            .order_by(MinutesVisa.document_id.desc())):
        return session.get(GeneratedDocument, document_id)
    return None


def standing_visas(session: Session, meeting: Meeting,
                   latest: GeneratedDocument | None) -> dict[str, MinutesVisa]:
    """The visas that stand, by institution: while the minutes await visas, those on their
    latest version; once signed, those on the version signed (the final minutes, built
    afterwards, carry them); none otherwise (a version being corrected after a director's
    request carries no earlier visa)."""
    signed = (latest if meeting.state == "pv_en_signature"
              else approved_minutes(session, meeting))
    if signed is None:
        return {}
    return {visa.institution: visa for visa in session.scalars(
        select(MinutesVisa).where(MinutesVisa.document_id == signed.id)
        .order_by(MinutesVisa.id))}


def has_read_minutes(session: Session, document: GeneratedDocument, user_id: int) -> bool:
    return session.scalar(select(MinutesReading.id).where(
        MinutesReading.document_id == document.id, MinutesReading.user_id == user_id)) \
        is not None


def read_minutes(vault: Vault, document: GeneratedDocument, user_id: int, *,
                 pdf: bool = False) -> bytes:
    """A director opens a version of the minutes (``download``): the reading a visa or a
    correction request needs is recorded."""
    body = download(vault, document, pdf=pdf)
    if not has_read_minutes(vault.session, document, user_id):
        try:
            with vault.session.begin_nested():  # the Word and the PDF opened at once
                vault.session.add(MinutesReading(document_id=document.id, user_id=user_id))
        except IntegrityError:
            pass  # the other request recorded this reading
    return body


def minutes_corrections(session: Session, meeting: Meeting) -> list[MinutesCorrection]:
    """The directors' correction requests on this session's minutes, latest first."""
    return list(session.scalars(select(MinutesCorrection).where(
        MinutesCorrection.meeting_id == meeting.id).order_by(MinutesCorrection.id.desc())))


# -- documents leaving the vault --------------------------------------------------------------
def _body(vault: Vault, document: GeneratedDocument, pdf: bool, action: str,
          fields: list[str]) -> bytes:
    if pdf and document.pdf_body is None:
        raise NotFoundError("PDF indisponible : LibreOffice n'est pas installé sur la machine du "
                            "générateur (le document Word est disponible).")
    # Audited before decrypting: if the row cannot be written, nothing is opened (rule 11).
    audit.record(vault.session, vault.keyring, vault.actor, action,
                 object_type="generated_documents", object_ids=[document.id], fields=fields)
    return vault.open_blob(document, "pdf_body" if pdf else "body")


def download(vault: Vault, document: GeneratedDocument, *, pdf: bool = False) -> bytes:
    """One file, decrypted for a page (``document_downloaded``, naming the field)."""
    return _body(vault, document, pdf, "document_downloaded", ["pdf_body" if pdf else "body"])


def export(vault: Vault, document: GeneratedDocument, *, pdf: bool = False) -> bytes:
    """One file, decrypted for ``icli generate --out`` (``document_exported``)."""
    return _body(vault, document, pdf, "document_exported", [])


def archived_documents(session: Session, meeting: Meeting) -> list[GeneratedDocument]:
    """What the session's archive holds: the latest agenda, dossier, émargement and minutes,
    the version of the minutes both directors approved (the file their visas' fingerprint
    names, when it is not the latest), and the latest fiche retour of each situation."""
    included = [document for kind in ("agenda", "dossier", "attendance", "minutes")
                if (document := latest_document(session, meeting.id, kind)) is not None]
    approved = approved_minutes(session, meeting)
    if approved is not None and approved not in included:
        included.append(approved)
    included += [document for sheet_id in feedback_sheet_ids(session, meeting)
                 if (document := latest_document(session, meeting.id, "feedback", sheet_id))
                 is not None]
    return included


def meeting_archive(session: Session, vault: Vault, meeting: Meeting) -> bytes:
    """The session's archive, a zip: its documents (``archived_documents``, Word and PDF)
    and a CSV of the decisions, by reference only. Audited before anything is decrypted."""
    included = archived_documents(session, meeting)
    audit.record(session, vault.keyring, vault.actor, "archive_downloaded",
                 object_type="meetings", object_ids=[meeting.id],
                 fields=[str(d.id) for d in included])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive_file:
        for document in included:
            archive_file.writestr(document.filename, vault.open_blob(document, "body"))
            if document.pdf_body is not None:
                archive_file.writestr(document.filename.removesuffix(".docx") + ".pdf",
                                      vault.open_blob(document, "pdf_body"))
        archive_file.writestr("decisions.csv", _decisions_csv(session, vault, meeting))
    return buffer.getvalue()


DECISION_COLUMNS = ["Référence", "Partie", "Motif", "Structure", "Issue", "Avis",
                    "Motif de l'ajournement", "Décision formelle", "Retour en instance",
                    "Préconisation", "Porteur", "Échéance"]


def _decisions_csv(session: Session, vault: Vault, meeting: Meeting) -> str:
    """One row per préconisation (its text, porteur and échéance), and one row for a
    situation without any, adjourned ones included, in agenda order: by reference only."""
    labels = reference_labels(session)
    decisions = {d.sheet_id: d for d in session.scalars(
        select(Decision).where(Decision.meeting_id == meeting.id).order_by(Decision.id))}
    actions = [a for d in decisions.values() for a in d.actions]
    texts = {a.id: (opened["label"].reveal() if opened["label"] is not None else "")
             for a, opened in zip(actions, vault.open_many(actions, ["label"]) if actions
                                  else [], strict=True)}
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(DECISION_COLUMNS)
    for item in sorted(meeting.items, key=lambda i: (i.position, i.id)):
        if item.sheet is None or not item.outcome:
            continue
        sheet, decision = item.sheet, decisions.get(item.sheet_id)
        adjourned = item.outcome == "ajourne"
        situation = [
            sheet.reference, AGENDA_PARTS.get(item.part, item.part),
            labels["motif"].get(sheet.motif or "", ""), sheet.structure.name,
            "Ajournée" if adjourned else "Examinée",
            labels["avis"].get(decision.avis, decision.avis)
            if decision and not adjourned else "",
            item.adjourn_reason if adjourned else "",
            FORMAL_DECISION[decision.formal_decision_by] if decision and not adjourned else "",
            decision.come_back_on.strftime("%d/%m/%Y")
            if decision and decision.come_back_on and not adjourned else ""]
        recommended = decision.actions if decision and not adjourned else []
        for action in recommended:
            writer.writerow([*situation, texts[action.id],
                             action.owner.name if action.owner else "",
                             action.due_on.strftime("%d/%m/%Y") if action.due_on else ""])
        if not recommended:
            writer.writerow([*situation, "", "", ""])
    return "\ufeff" + out.getvalue()
