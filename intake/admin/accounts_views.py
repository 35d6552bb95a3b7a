"""Administrators edit an account (role, scope, habilitation) and hand a departing
referent's open sheets to a colleague."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for

from intake.access import role_required
from intake.admin.forms import AccountEditForm, ReassignForm
from intake.admin.views import bp, fill_choices, habilitation, role_spec
from intake.choices import choices
from intake.dbsession import db, vault
from shared.domain import account_lifecycle, users
from shared.errors import DomainError
from shared.models import User


@bp.route("/utilisateurs/<int:user_id>", methods=["GET", "POST"])
@role_required("admin")
def user_edit(user_id: int):
    account = db().get(User, user_id) or abort(404)
    form = AccountEditForm(obj=account)
    fill_choices(form)
    if not form.is_submitted():
        spec = users.role_spec(account)
        form.role.data, form.structure_id.data = spec.role, spec.structure_id or 0
        form.circonscription_ids.data = list(spec.circonscription_ids)
        form.manager.data, form.institution.data = spec.manager, spec.institution or ""
    if form.validate_on_submit():
        try:
            changed = users.update_account(db(), vault(), account,
                                           full_name=form.full_name.data,
                                           role=role_spec(form),
                                           habilitation=habilitation(form))
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            flash("Compte modifié." if changed else "Aucune modification.", "success")
            return redirect(url_for("admin.users_list"))
    open_sheets = account_lifecycle.open_sheets(db(), account)
    return render_template("admin/user_edit.html", form=form, account=account,
                           open_sheets=len(open_sheets))


@bp.route("/utilisateurs/<int:user_id>/fiches", methods=["GET", "POST"])
@role_required("admin")
def user_reassign(user_id: int):
    departing = db().get(User, user_id) or abort(404)
    form = ReassignForm()
    candidates = account_lifecycle.colleagues(db(), departing)
    form.colleague_id.choices = choices([(u.id, u.full_name) for u in candidates])
    if form.validate_on_submit():
        colleague = db().get(User, form.colleague_id.data) or abort(404)
        try:
            moved = account_lifecycle.reassign_open_sheets(db(), vault(), departing, colleague)
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            flash(f"{len(moved)} fiche(s) confiée(s) à {colleague.full_name}, qui en est "
                  "informé·e.", "success")
            return redirect(url_for("admin.user_edit", user_id=departing.id))
    return render_template("admin/user_reassign.html", form=form, account=departing,
                           open_sheets=account_lifecycle.open_sheets(db(), departing))
