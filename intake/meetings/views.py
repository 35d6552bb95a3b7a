"""Facilitators: their sessions, the agenda, document generation and downloads."""

from __future__ import annotations

import io
import logging

import redis
from flask import Blueprint, abort, flash, redirect, render_template, send_file, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from intake.access import meeting_in_scope, role_required
from intake.dbsession import db, record, services, vault
from shared.domain import documents
from shared.errors import DomainError
from shared.models import GeneratedDocument, Meeting
from shared.models.document import DOCUMENT_KINDS
from shared.models.meeting import AGENDA_PARTS
from shared.queue import enqueue_document_job

log = logging.getLogger(__name__)

bp = Blueprint("meetings", __name__, url_prefix="/seances")


def send_pending(meeting_id: int) -> None:
    """Hand the meeting's unsent jobs to Redis; if it is down they wait (outbox)."""
    session = db()
    for job in documents.jobs_to_send(session, meeting_id=meeting_id):
        try:
            enqueue_document_job(services().redis, services().keyring, job.uuid,
                                 job.requested_by)
        except redis.RedisError:
            log.warning("Redis unavailable: document job %s stays queued", job.id)
            return
        documents.mark_sent(session, job)
        session.commit()


@bp.route("/")
@role_required("facilitator")
def index():
    rows = db().scalars(select(Meeting).where(
        Meeting.circonscription_id.in_(current_user.circonscription_ids))
        .order_by(Meeting.starts_at.desc())).all()
    return render_template("meetings/index.html", meetings=rows)


@bp.route("/<int:meeting_id>")
@role_required("facilitator")
def show(meeting_id: int):
    meeting = meeting_in_scope(meeting_id)
    send_pending(meeting.id)
    jobs = documents.latest_jobs(db(), meeting.id)
    return render_template("meetings/show.html", meeting=meeting, jobs=jobs, parts=AGENDA_PARTS,
                           kinds=DOCUMENT_KINDS, form=FlaskForm())


@bp.route("/<int:meeting_id>/documents/<kind>", methods=["POST"])
@role_required("facilitator")
def generate(meeting_id: int, kind: str):
    meeting = meeting_in_scope(meeting_id)
    if kind not in DOCUMENT_KINDS:
        abort(404)
    try:
        job = documents.request_document(db(), meeting, kind, current_user.id)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("meetings.show", meeting_id=meeting.id))
    record("document_requested", object_type="document_jobs", object_ids=[job.id])
    db().commit()  # the outbox row exists before anything is sent to Redis
    send_pending(meeting.id)
    flash(f"{DOCUMENT_KINDS[kind]} : génération demandée.", "success")
    return redirect(url_for("meetings.show", meeting_id=meeting.id))


@bp.route("/<int:meeting_id>/documents/<kind>/statut")
@role_required("facilitator")
def job_status(meeting_id: int, kind: str):
    meeting = meeting_in_scope(meeting_id)
    job = documents.latest_jobs(db(), meeting.id).get(kind) or abort(404)
    return {"status": job.status, "label": job.status_label, "step": job.step,
            "error": job.error_message or "",
            "download": url_for("meetings.download", document_id=job.document_id)
            if job.document_id else ""}


@bp.route("/documents/<int:document_id>")
@role_required("facilitator")
def download(document_id: int):
    document = db().get(GeneratedDocument, document_id) or abort(404)
    meeting_in_scope(document.meeting_id)
    body = vault().open_blob(document, "body")
    record("document_downloaded", object_type="generated_documents", object_ids=[document.id])
    db().commit()  # audited before the file leaves
    return send_file(io.BytesIO(body), mimetype=document.media_type, as_attachment=True,
                     download_name=document.filename, max_age=0)
