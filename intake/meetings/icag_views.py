"""Facilitators, after the session is held: the ICAG steps (entry, renewal, exit) and the
outcome of partnership items."""

from __future__ import annotations

from flask import abort, flash, render_template
from flask_wtf import FlaskForm
from sqlalchemy import select

from intake.access import meeting_in_scope, role_required
from intake.choices import choices
from intake.dbsession import db, vault
from intake.meetings.forms import IcagEntryForm, IcagExitForm, PartnershipOutcomeForm
from intake.meetings.views import _dismissals, _done, _optional_date, bp
from shared.domain import icag, partnership
from shared.domain.reference import reference_labels
from shared.domain.screening import DISMISS_REASONS, TextsNeedReviewError
from shared.errors import DomainError
from shared.models import AgendaItem, Meeting, Structure
from shared.models.meeting import ICAG_KINDS


def _item(meeting: Meeting, item_id: int, part: str) -> AgendaItem:
    item = next((i for i in meeting.items if i.id == item_id and i.part == part), None)
    if item is None:
        abort(404)
    return item


@bp.route("/<int:meeting_id>/points/<int:item_id>/icag", methods=["GET", "POST"])
@role_required("facilitator")
def icag_step(meeting_id: int, item_id: int):
    meeting = meeting_in_scope(meeting_id)
    item = _item(meeting, item_id, "icag")
    entry, leave = IcagEntryForm(), IcagExitForm()
    entry.diagnostic_structure_id.choices = choices([(0, "—"), *(
        (s.id, s.name) for s in db().scalars(select(Structure).where(Structure.active.is_(True))
                                             .order_by(Structure.name)))])
    entry.categories.choices = choices(
        reference_labels(db(), active_only=True)["frein"].items())
    form = {"entree": entry, "sortie": leave}.get(item.icag_kind) or FlaskForm()
    if form.validate_on_submit():
        try:
            if item.icag_kind == "entree":
                icag.record_entry(
                    db(), vault(), meeting, item.id,
                    started_on=_optional_date(entry.started_on.data, "Début"),
                    diagnostic_on=_optional_date(entry.diagnostic_on.data, "Diagnostic partagé"),
                    diagnostic_structure_id=entry.diagnostic_structure_id.data,
                    categories=entry.categories.data or [])
            elif item.icag_kind == "renouvellement":
                icag.record_renewal(db(), vault(), meeting, item.id)
            else:
                icag.record_exit(db(), vault(), meeting, item.id,
                                 ended_on=_optional_date(leave.ended_on.data, "Fin"),
                                 reason=leave.reason.data or "")
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            return _done(meeting, f"Accompagnement global ({ICAG_KINDS[item.icag_kind].lower()})"
                                  f" enregistré pour {item.sheet.reference}.", "#odj")
    support = icag.running_support(db(), item.sheet.beneficiary_id)
    return render_template("meetings/icag.html", meeting=meeting, item=item, form=form,
                           step=icag.step_of(db(), item), support=support,
                           kind_label=ICAG_KINDS.get(item.icag_kind, ""),
                           open=meeting.state in icag.RECORD_STATES)


@bp.route("/<int:meeting_id>/points/<int:item_id>/partenariat", methods=["GET", "POST"])
@role_required("facilitator")
def partnership_outcome(meeting_id: int, item_id: int):
    meeting = meeting_in_scope(meeting_id)
    item = _item(meeting, item_id, "partenariat")
    form = PartnershipOutcomeForm(obj=None if item.summary == "" else item)
    review = None  # the caught words, highlighted, once texts were refused
    if form.validate_on_submit():
        try:
            partnership.record_outcome(
                db(), vault(), meeting, item.id, summary=form.summary.data or "",
                next_step=form.next_step.data or "",
                follow_up_on=_optional_date(form.follow_up_on.data, "Date de suivi"),
                dismissals=_dismissals())
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
            review = exc if isinstance(exc, TextsNeedReviewError) else None
        else:
            return _done(meeting, "Compte rendu du point partenarial enregistré.", "#odj")
    return render_template("meetings/partnership.html", meeting=meeting, item=item, form=form,
                           open=meeting.state in partnership.OUTCOME_STATES, review=review,
                           reasons=DISMISS_REASONS)
