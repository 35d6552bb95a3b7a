"""Administrators: taking the second factor off an account whose owner lost their phone and
their recovery codes (audited by the domain call)."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for

from intake.access import role_required
from intake.admin.views import bp
from intake.dbsession import db, vault
from shared.domain import second_factor
from shared.errors import DomainError
from shared.models import User


@bp.route("/utilisateurs/<int:user_id>/second-facteur", methods=["POST"])
@role_required("admin")
def user_second_factor_reset(user_id: int):
    user = db().get(User, user_id) or abort(404)
    try:
        second_factor.reset(db(), vault(), user)
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
    else:
        db().commit()
        flash(f"Le second facteur de {user.full_name} est réinitialisé : il ou elle en "
              "activera un nouveau à sa prochaine connexion.", "success")
    return redirect(url_for("admin.users_list"))
