"""Administrators: document generation jobs (counted, failed, stuck) and the live workers.

Registered on the admin blueprint by the last line of intake/admin/views.py. The page reads
shared/domain/job_board.py; « Relancer » is a domain call that writes its own audit row."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for

from intake.access import role_required
from intake.admin.views import bp
from intake.dbsession import db, vault
from intake.meetings.views import send_pending
from shared.domain import documents, job_board
from shared.errors import DomainError
from shared.models import DocumentJob
from shared.models.document import DOCUMENT_KINDS, JOB_STATES


@bp.route("/travaux")
@role_required("admin")
def jobs():
    counts = job_board.counts_by_kind_and_state(db())
    return render_template("admin/jobs.html", counts=counts, kinds=DOCUMENT_KINDS,
                           states=JOB_STATES, totals=job_board.totals_by_state(counts),
                           failed=job_board.failed_jobs(db()),
                           stuck=job_board.stuck_jobs(db()),
                           workers=job_board.live_workers(db()))


@bp.route("/travaux/<int:job_id>/relancer", methods=["POST"])
@role_required("admin")
def job_retry(job_id: int):
    job = db().get(DocumentJob, job_id) or abort(404)
    try:
        documents.retry_failed_job(db(), vault(), job)
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(url_for("admin.jobs"))
    db().commit()
    send_pending()  # hands it to Redis now; if Redis is down, the page says so and it waits
    flash("Génération relancée.", "success")
    return redirect(url_for("admin.jobs"))
