"""Home page per role, and the health check."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select, text

from intake.dbsession import db
from shared.models import Meeting, Sheet

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def home():
    session = db()
    counts = {}
    if current_user.structure_ids:
        counts["sheets"] = session.scalar(select(func.count()).select_from(Sheet).where(
            Sheet.structure_id.in_(current_user.structure_ids)))
    if current_user.circonscription_ids:
        counts["meetings"] = session.scalar(select(func.count()).select_from(Meeting).where(
            Meeting.circonscription_id.in_(current_user.circonscription_ids)))
    return render_template("main/home.html", counts=counts)


@bp.route("/healthz")
def healthz():
    db().execute(text("SELECT 1"))
    return {"status": "ok"}
