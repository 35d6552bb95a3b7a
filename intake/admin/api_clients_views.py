"""Administrators create and revoke the API's client tokens."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for

from intake.access import role_required
from intake.admin.forms import ApiClientForm
from intake.admin.views import bp
from intake.choices import choices
from intake.dbsession import db, vault
from shared.domain import api_clients as domain
from shared.domain.users import paris_today
from shared.errors import DomainError
from shared.models import ApiClient
from shared.models.user import API_SCOPES


@bp.route("/api", methods=["GET", "POST"])
@role_required("admin")
def api_clients():
    form = ApiClientForm()
    form.scopes.choices = choices(API_SCOPES.items())
    if form.validate_on_submit():
        try:
            client, token = domain.create_client(
                db(), vault(), name=form.name.data, scopes=form.scopes.data,
                expires_on=form.expires_on.data, today=paris_today())
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            return render_template("admin/api_token_shown.html", client=client, token=token)
    return render_template("admin/api_clients.html", form=form, scopes=API_SCOPES,
                           clients=domain.clients(db()))


@bp.route("/api/<int:client_id>/revoquer", methods=["POST"])
@role_required("admin")
def api_client_revoke(client_id: int):
    client = db().get(ApiClient, client_id) or abort(404)
    domain.revoke_client(db(), vault(), client)
    db().commit()
    flash("Jeton révoqué : il ne donne plus accès à l'API.", "success")
    return redirect(url_for("admin.api_clients"))
