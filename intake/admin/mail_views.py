"""Administrators: e-mails that could not be delivered, and the development outbox (.eml files
written when no SMTP server is configured)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, send_file, url_for

from intake.access import role_required
from intake.admin.views import bp
from intake.dbsession import db, services, vault
from intake.meetings.views import send_pending
from shared.domain import notifications
from shared.errors import DomainError
from shared.models import Notification
from shared.models.notification import KIND_LABELS, STATES

EML_NAME = re.compile(r"^[0-9a-f-]{36}\.eml$")
EML_SHOWN = 100


@bp.route("/courriels")
@role_required("admin")
def mail():
    settings = services().settings
    counts = notifications.counts_by_state(db())
    files = []
    if settings.smtp is None and settings.mail_outbox_dir.is_dir():
        paths = sorted(settings.mail_outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime,
                       reverse=True)[:EML_SHOWN]
        files = [(p.name, p.stat().st_size,
                  datetime.fromtimestamp(p.stat().st_mtime, UTC).replace(tzinfo=None))
                 for p in paths]
    return render_template("admin/mail.html", failures=notifications.failures(db()),
                           counts=counts, states=STATES, kinds=KIND_LABELS, files=files,
                           smtp=settings.smtp is not None)


@bp.route("/courriels/<int:notification_id>/relancer", methods=["POST"])
@role_required("admin")
def mail_retry(notification_id: int):
    row = db().get(Notification, notification_id) or abort(404)
    try:
        notifications.retry_failed(db(), vault(), row)
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(url_for("admin.mail"))
    db().commit()
    send_pending()
    flash("Courriel remis en file d'envoi.", "success")
    return redirect(url_for("admin.mail"))


@bp.route("/courriels/boite-locale/<name>")
@role_required("admin")
def mail_file(name: str):
    """A development .eml file (they only exist without SMTP)."""
    folder = services().settings.mail_outbox_dir
    if not EML_NAME.match(name) or not (folder / name).is_file():
        abort(404)
    return send_file(io.BytesIO((folder / name).read_bytes()), mimetype="message/rfc822",
                     as_attachment=True, download_name=name, max_age=0)
