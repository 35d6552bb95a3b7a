"""Directors: the minutes awaiting their visa, and the visa itself (authenticated approval of
the exact file, recorded with its SHA-256)."""

from __future__ import annotations

import hashlib

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from intake.access import role_required
from intake.dbsession import db, vault
from intake.ids import record_id
from intake.meetings.views import send_document
from shared.domain import documents, meetings
from shared.errors import DomainError
from shared.models import GeneratedDocument, Meeting
from shared.models.document import INSTITUTIONS

bp = Blueprint("signatures", __name__, url_prefix="/visas")
SENT_STATES = {"pv_en_signature", "pv_signe", "cloturee"}


@bp.route("/")
@role_required("director")
def inbox():
    meetings = db().scalars(select(Meeting).where(
        Meeting.state.in_(("pv_en_signature", "pv_signe", "cloturee")))
        .order_by(Meeting.state != "pv_en_signature", Meeting.starts_at.desc()).limit(50)).all()
    rows = []
    for meeting in meetings:
        document = documents.latest_document(db(), meeting.id, "minutes")
        rows.append((meeting, document, documents.standing_visas(db(), meeting, document)))
    return render_template("signatures/inbox.html", rows=rows, institutions=INSTITUTIONS,
                           mine=current_user.institutions, form=FlaskForm())


@bp.route("/documents/<int:document_id>")
@role_required("director")
def download(document_id: int):
    document = db().get(GeneratedDocument, document_id)
    if document is None or document.kind != "minutes":
        abort(404)
    meeting = db().get(Meeting, document.meeting_id)
    if meeting.state not in SENT_STATES:
        abort(404)  # directors read the minutes only, once sent for their visa
    return send_document(document, request.args.get("format") == "pdf")


@bp.route("/<int:meeting_id>/<institution>", methods=["POST"])
@role_required("director")
def sign(meeting_id: int, institution: str):
    meeting = db().get(Meeting, meeting_id)
    document = db().get(GeneratedDocument, request.form.get("document_id", type=record_id) or 0)
    if meeting is None or institution not in INSTITUTIONS:
        abort(404)
    if document is None or document.meeting_id != meeting.id or document.kind != "minutes":
        flash("Ce procès-verbal n'est pas celui de la séance : rechargez la liste.", "error")
        return redirect(url_for("signatures.inbox"))
    # The hashes of the exact files the director could download and read (Word, PDF).
    digest = hashlib.sha256(vault().open_blob(document, "body")).hexdigest()
    pdf_digest = (hashlib.sha256(vault().open_blob(document, "pdf_body")).hexdigest()
                  if document.pdf_body is not None else None)
    try:
        both = meetings.apply_visa(db(), vault(), meeting, document, current_user,
                                    institution, digest, pdf_digest)
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(url_for("signatures.inbox"))
    db().commit()
    if both:
        from intake.meetings.views import send_pending

        send_pending(meeting.id)  # the final minutes, carrying both visas
    flash("Visa apposé." + (" Le procès-verbal est signé : la version finale est en cours de "
                            "génération." if both else ""), "success")
    return redirect(url_for("signatures.inbox"))
