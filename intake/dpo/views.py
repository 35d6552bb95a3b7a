"""The DPO: reads the audit trail and the retention report, never personal data."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from sqlalchemy import select

from intake.access import role_required
from intake.choices import choices
from intake.dbsession import db, services, vault
from intake.dpo.forms import AuditFilterForm
from intake.ids import record_id
from shared import audit_checkpoint as audit_checkpoint_module
from shared.domain import audit_log, retention
from shared.models import User

bp = Blueprint("dpo", __name__, url_prefix="/dpo")


def _filters() -> tuple[AuditFilterForm, audit_log.Filters]:
    form = AuditFilterForm(request.args)
    users = db().scalars(select(User).order_by(User.full_name)).all()
    form.user_id.choices = choices([(0, "Tous"), *((u.id, u.full_name) for u in users)])
    form.action.choices = choices([("", "Toutes"), *sorted(
        ((a, audit_log.action_label(a)) for a in audit_log.actions(db())),
        key=lambda choice: choice[1].casefold())])
    form.validate()  # a field in error is shown with its message and left out; the rest apply

    def valid(field, empty=None):
        return empty if field.errors else (field.data or empty)
    return form, audit_log.Filters(user_id=valid(form.user_id), reference=valid(form.reference, ""),
                                   action=valid(form.action, ""), since=valid(form.since),
                                   until=valid(form.until))


@bp.route("/journal")
@role_required("dpo")
def audit_page():
    form, filters = _filters()
    # Any page past the last is empty; the bound keeps its offset within a database integer.
    page = min(request.args.get("page", 1, type=record_id), 10**9)
    rows, total = audit_log.search(db(), filters, page)
    query = {k: v for k, v in request.args.items() if k not in ("page", "submit")}
    return render_template("dpo/audit.html", form=form, rows=rows, total=total, page=page,
                           pages=max(1, -(-total // audit_log.PAGE_SIZE)), query=query,
                           names=audit_log.actor_names(db(), rows),
                           action_label=audit_log.action_label,
                           object_label=audit_log.object_label,
                           fields_label=audit_log.fields_label,
                           purpose_label=audit_log.purpose_label)


@bp.route("/journal.csv")
@role_required("dpo")
def audit_csv():
    _, filters = _filters()
    body, _count = audit_log.export_csv(db(), vault(), filters)
    db().commit()
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=journal-audit.csv"})


@bp.route("/point-de-controle.json")
@role_required("dpo")
def audit_checkpoint():
    """A signed checkpoint of the chain's head: kept outside, it reveals rows deleted later."""
    checkpoint = audit_log.export_checkpoint(db(), vault())
    db().commit()
    return Response(audit_checkpoint_module.to_json(checkpoint), mimetype="application/json",
                    headers={"Content-Disposition":
                             f"attachment; filename=point-de-controle-{checkpoint.seq}.json"})


@bp.route("/conservation")
@role_required("dpo")
def retention_report():
    policy = retention.Policy.from_settings(services().settings)
    report = retention.preview(db(), policy)
    return render_template("dpo/retention.html", report=report, policy=policy,
                           reasons=retention.REASONS)
