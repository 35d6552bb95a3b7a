"""Members answer their convocation through the personal link of the e-mail: no account, no
password; the page shows the session's date and place and nothing else."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_wtf import FlaskForm

from intake.dbsession import db, services
from intake.errors import error_page
from shared.domain import audit, meetings, notifications
from shared.encrypted import Vault
from shared.errors import DomainError
from shared.models.meeting import ANSWERS

bp = Blueprint("convocations", __name__, url_prefix="/convocation")
OFFERED = {key: label for key, label in ANSWERS.items() if key != "non_renseigne"}


@bp.route("/<int:meeting_id>/<token>", methods=["GET", "POST"])
def answer(meeting_id: int, token: str):
    try:
        row = notifications.invitation_for(db(), services().settings.link_key, meeting_id,
                                           token)
    except DomainError as exc:
        return error_page(404, "Lien non valable", exc.message)
    form = FlaskForm()
    error = ""
    if form.validate_on_submit():
        choice = request.form.get("answer", "")
        try:
            if choice not in OFFERED:
                raise DomainError("Choisissez votre réponse.")
            try:  # spent first: of two answers sent at once, the second is refused here
                notifications.use_answer_link(db(), row)
            except DomainError as exc:
                db().rollback()
                return error_page(404, "Lien non valable", exc.message)
            vault = Vault(db(), services().keyring, audit.Actor(None, "convocation_link"))
            meetings.record_answers(db(), vault, row.meeting, {
                row.id: (choice, request.form.get("replacement", ""))})
        except DomainError as exc:
            db().rollback()
            error = exc.message
        else:
            db().commit()
            return render_template("convocations/answered.html", meeting=row.meeting,
                                   label=OFFERED[choice])
    return render_template("convocations/answer.html", meeting=row.meeting, form=form,
                           answers=OFFERED, error=error)
