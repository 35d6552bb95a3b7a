"""Administrators: accounts and reference data. No access to beneficiaries' data."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import select

from intake.access import role_required
from intake.admin.forms import (
    AccountScopeForm,
    CirconscriptionForm,
    ReferenceItemForm,
    StructureForm,
    UserForm,
)
from intake.choices import choices
from intake.dbsession import db, vault
from shared.domain import reference, users
from shared.errors import DomainError
from shared.models import Circonscription, ReferenceItem, Structure, User
from shared.models.user import ROLES
from shared.sheet_schema import EDITABLE_KINDS

bp = Blueprint("admin", __name__, url_prefix="/admin")


def fill_choices(form: AccountScopeForm | StructureForm) -> None:
    session = db()
    circs = session.scalars(select(Circonscription).order_by(Circonscription.code)).all()
    circ_choices = [(c.id, f"{c.code} – {c.name}") for c in circs]
    if isinstance(form, AccountScopeForm):
        structures = session.scalars(select(Structure).order_by(Structure.name)).all()
        form.structure_id.choices = choices([(0, "—")] + [(s.id, s.name) for s in structures])
        form.circonscription_ids.choices = choices(circ_choices)
    else:
        form.circonscription_id.choices = choices([(0, "— (aucune)"), *circ_choices])


@bp.route("/utilisateurs")
@role_required("admin")
def users_list():
    accounts = db().scalars(select(User).order_by(User.full_name)).all()
    return render_template("admin/users.html", accounts=accounts, roles=ROLES)


@bp.route("/utilisateurs/nouveau", methods=["GET", "POST"])
@role_required("admin")
def user_new():
    form = UserForm()
    fill_choices(form)
    if form.validate_on_submit():
        try:
            user, password = users.create_account(
                db(), vault(), email=form.email.data, full_name=form.full_name.data,
                role=role_spec(form), habilitation=habilitation(form))
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            return render_template("admin/password_shown.html", account=user, password=password)
    return render_template("admin/user_new.html", form=form)


def role_spec(form: AccountScopeForm) -> users.RoleSpec:
    return users.RoleSpec(form.role.data, structure_id=form.structure_id.data or None,
                          circonscription_ids=tuple(form.circonscription_ids.data or ()),
                          manager=form.manager.data, institution=form.institution.data or None)


def habilitation(form: AccountScopeForm) -> tuple:
    return form.habilitation_starts_on.data, form.habilitation_ends_on.data


@bp.route("/utilisateurs/<int:user_id>/<any(activer, desactiver):action>", methods=["POST"])
@role_required("admin")
def user_set_active(user_id: int, action: str):
    user = db().get(User, user_id) or abort(404)
    try:
        users.set_active(db(), vault(), user, action == "activer")
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
    else:
        db().commit()
        flash("Compte réactivé." if user.active else "Compte désactivé.", "success")
    return redirect(url_for("admin.users_list"))


@bp.route("/utilisateurs/<int:user_id>/reinitialiser", methods=["POST"])
@role_required("admin")
def user_reset(user_id: int):
    user = db().get(User, user_id) or abort(404)
    password = users.reset_password(db(), vault(), user)
    db().commit()
    return render_template("admin/password_shown.html", account=user, password=password)


@bp.route("/circonscriptions")
@role_required("admin")
def circonscriptions():
    rows = db().scalars(select(Circonscription).order_by(Circonscription.code)).all()
    return render_template("admin/circonscriptions.html", rows=rows)


@bp.route("/circonscriptions/nouvelle", methods=["GET", "POST"], defaults={"circ_id": None})
@bp.route("/circonscriptions/<int:circ_id>", methods=["GET", "POST"])
@role_required("admin")
def circonscription_edit(circ_id: int | None):
    circ = (db().get(Circonscription, circ_id) or abort(404)) if circ_id else None
    form = CirconscriptionForm(obj=circ)
    if form.validate_on_submit():
        try:
            reference.save_circonscription(db(), vault(), circ, code=form.code.data,
                                           name=form.name.data, active=form.active.data)
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            flash("Circonscription enregistrée.", "success")
            return redirect(url_for("admin.circonscriptions"))
    return render_template("admin/edit.html", form=form,
                           title="Circonscription" if circ else "Nouvelle circonscription")


@bp.route("/structures")
@role_required("admin")
def structures():
    rows = db().scalars(select(Structure).order_by(Structure.name)).all()
    return render_template("admin/structures.html", rows=rows)


@bp.route("/structures/nouvelle", methods=["GET", "POST"], defaults={"structure_id": None})
@bp.route("/structures/<int:structure_id>", methods=["GET", "POST"])
@role_required("admin")
def structure_edit(structure_id: int | None):
    structure = (db().get(Structure, structure_id) or abort(404)) if structure_id else None
    form = StructureForm(obj=structure)
    fill_choices(form)
    if structure is not None and not form.is_submitted():
        form.circonscription_id.data = structure.circonscription_id or 0
    if form.validate_on_submit():
        try:
            reference.save_structure(
                db(), vault(), structure, name=form.name.data, type=form.type.data,
                circonscription_id=form.circonscription_id.data or None,
                active=form.active.data)
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            flash("Structure enregistrée.", "success")
            return redirect(url_for("admin.structures"))
    return render_template("admin/edit.html", form=form,
                           title="Structure" if structure else "Nouvelle structure")


@bp.route("/referentiels")
@role_required("admin")
def references():
    kinds = {kind: (label, reference.reference_items(db(), kind, include_inactive=True))
             for kind, label in EDITABLE_KINDS.items()}
    return render_template("admin/references.html", kinds=kinds)


@bp.route("/referentiels/<kind>/nouveau", methods=["GET", "POST"], defaults={"item_id": None})
@bp.route("/referentiels/<kind>/<int:item_id>", methods=["GET", "POST"])
@role_required("admin")
def reference_edit(kind: str, item_id: int | None):
    if kind not in EDITABLE_KINDS:
        abort(404)
    item = None
    if item_id is not None:
        item = db().get(ReferenceItem, item_id)
        if item is None or item.kind != kind:
            abort(404)
    form = ReferenceItemForm(obj=item)
    if item is not None:
        del form.code  # codes are stored in sheets: they never change
    if form.validate_on_submit():
        try:
            reference.save_reference_item(
                db(), vault(), item, kind=kind,
                code=form.code.data.strip() if item is None else "", label=form.label.data,
                active=form.active.data)
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            flash("Entrée enregistrée.", "success")
            return redirect(url_for("admin.references"))
    title = f"{EDITABLE_KINDS[kind]} : " + ("modifier une entrée" if item else "nouvelle entrée")
    return render_template("admin/edit.html", form=form, title=title)
from intake.admin import (  # noqa: E402,F401
    accounts_views,
    api_clients_views,
    import_views,
    jobs_views,
    keys_views,
    mail_views,
    second_factor_views,
    templates_views,
)
