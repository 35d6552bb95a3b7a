"""Directors: the minutes awaiting their visa, read, then approved (authenticated approval of
the exact file, recorded with its SHA-256) or sent back for correction with a comment; the
version both signed stays downloadable."""

from __future__ import annotations

import hashlib

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from intake.access import role_required
from intake.dbsession import db, vault
from intake.ids import record_id
from intake.meetings.views import file_response, send_pending
from shared.domain import documents, meetings
from shared.domain.screening import TextsNeedReviewError
from shared.errors import DomainError, NotFoundError
from shared.models import GeneratedDocument, Meeting
from shared.models.document import INSTITUTIONS

bp = Blueprint("signatures", __name__, url_prefix="/visas")
SENT_STATES = {"pv_en_signature", "pv_signe", "cloturee"}


@bp.route("/")
@role_required("director")
def inbox():
    meetings_sent = db().scalars(select(Meeting).where(Meeting.state.in_(SENT_STATES))
                                 .order_by(Meeting.state != "pv_en_signature",
                                           Meeting.starts_at.desc()).limit(50)).all()
    rows = []
    for meeting in meetings_sent:
        document = documents.latest_document(db(), meeting.id, "minutes")
        rows.append((meeting, document, documents.approved_minutes(db(), meeting),
                     documents.standing_visas(db(), meeting, document)))
    return render_template("signatures/inbox.html", rows=rows, institutions=INSTITUTIONS,
                           mine=current_user.institutions)


def _awaiting(meeting_id: int, institution: str) -> tuple[Meeting, GeneratedDocument | None]:
    meeting = db().get(Meeting, meeting_id)
    # Only the director's own institutions: another's page would offer forms they cannot use.
    if meeting is None or institution not in INSTITUTIONS.keys() & current_user.institutions:
        abort(404)
    return meeting, documents.latest_document(db(), meeting.id, "minutes")


@bp.route("/<int:meeting_id>/<institution>")
@role_required("director")
def review(meeting_id: int, institution: str):
    """The minutes to approve: open them, then confirm the visa or ask for a correction."""
    meeting, document = _awaiting(meeting_id, institution)
    if meeting.state != "pv_en_signature" or document is None:
        flash("Ce procès-verbal n'attend pas de visa.", "error")
        return redirect(url_for("signatures.inbox"))
    return render_template(
        "signatures/review.html", meeting=meeting, document=document, institution=institution,
        label=INSTITUTIONS[institution], form=FlaskForm(),
        read=documents.has_read_minutes(db(), document, current_user.id),
        comment="")


@bp.route("/documents/<int:document_id>")
@role_required("director")
def download(document_id: int):
    """A version of the minutes sent for visas (the latest, or the one both signed): opening
    it is the reading a visa needs."""
    document = db().get(GeneratedDocument, document_id)
    if document is None or document.kind != "minutes":
        abort(404)
    meeting = db().get(Meeting, document.meeting_id)
    if meeting.state not in SENT_STATES:
        abort(404)  # directors read the minutes only, once sent for their visa
    as_pdf = request.args.get("format") == "pdf"
    try:
        body = documents.read_minutes(vault(), document, current_user.id, pdf=as_pdf)
    except NotFoundError:
        abort(404)
    db().commit()
    return file_response(document, body, as_pdf)


def _posted_document(meeting: Meeting) -> GeneratedDocument | None:
    document = db().get(GeneratedDocument, request.form.get("document_id", type=record_id) or 0)
    if document is None or document.meeting_id != meeting.id or document.kind != "minutes":
        return None
    return document


@bp.route("/<int:meeting_id>/<institution>", methods=["POST"])
@role_required("director")
def sign(meeting_id: int, institution: str):
    meeting, _latest = _awaiting(meeting_id, institution)
    document = _posted_document(meeting)
    if document is None:
        flash("Ce procès-verbal n'est pas celui de la séance : rechargez la liste.", "error")
        return redirect(url_for("signatures.inbox"))
    # The hashes of the exact files the director could download and read (Word, PDF).
    digest = hashlib.sha256(vault().open_blob(document, "body")).hexdigest()
    pdf_digest = (hashlib.sha256(vault().open_blob(document, "pdf_body")).hexdigest()
                  if document.pdf_body is not None else None)
    try:
        both = meetings.apply_visa(db(), vault(), meeting, document, current_user,
                                    institution, digest, pdf_digest,
                                    confirmed=request.form.get("confirm") == "1")
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(url_for("signatures.review", meeting_id=meeting.id,
                                institution=institution))
    db().commit()
    if both:
        send_pending(meeting.id)  # the final minutes, carrying both visas
    flash("Visa apposé." + (" Le procès-verbal est signé : la version finale est en cours de "
                            "génération." if both else ""), "success")
    return redirect(url_for("signatures.inbox"))


@bp.route("/<int:meeting_id>/<institution>/correction", methods=["POST"])
@role_required("director")
def correction(meeting_id: int, institution: str):
    """Instead of a visa: the minutes go back to the CAT with the director's comment."""
    meeting, _latest = _awaiting(meeting_id, institution)
    document = _posted_document(meeting)
    comment = request.form.get("comment", "")
    if document is None:
        flash("Ce procès-verbal n'est pas celui de la séance : rechargez la liste.", "error")
        return redirect(url_for("signatures.inbox"))
    try:
        meetings.request_minutes_correction(db(), vault(), meeting, document, current_user,
                                            institution, comment)
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        # The comment comes back in the form (never in the log), to be reworded.
        keep = comment if isinstance(exc, TextsNeedReviewError) else ""
        return render_template(
            "signatures/review.html", meeting=meeting, document=document,
            institution=institution, label=INSTITUTIONS[institution], form=FlaskForm(),
            read=documents.has_read_minutes(db(), document, current_user.id),
            comment=keep), 422
    db().commit()
    send_pending(meeting.id)  # the CAT's notification
    flash("Demande de correction transmise à l'animation : le procès-verbal revient à l'état "
          "« PV rédigé ».", "success")
    return redirect(url_for("signatures.inbox"))
