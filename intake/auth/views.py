"""Login, logout, password change, and the account page (notification preferences)."""

from __future__ import annotations

import re

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm

from intake.auth.forms import ChangePasswordForm, LoginForm
from intake.dbsession import db, vault
from shared.domain import notifications, users
from shared.errors import InvalidInputError
from shared.models.notification import MODES

bp = Blueprint("auth", __name__)


@bp.route("/connexion", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = users.log_in(db(), vault(), form.email.data, form.password.data,
                                request.remote_addr or "")
        except InvalidInputError as exc:
            db().commit()  # the failure counters and the audit row
            flash(exc.message, "error")
            return render_template("auth/login.html", form=form), 401
        db().commit()
        login_user(user)
        flask_session.permanent = True  # idle timeout: PERMANENT_SESSION_LIFETIME, sliding
        return redirect(_safe_next(request.args.get("next")) or url_for("main.home"))
    return render_template("auth/login.html", form=form)


_SAFE_PATH = re.compile(r"/[A-Za-z0-9\-._~/]*")


def _safe_next(target: str | None) -> str | None:
    """A plain path of this site only (no scheme, host, whitespace or query): never an open
    redirect, whatever the browser would make of backslashes or control characters."""
    if target and _SAFE_PATH.fullmatch(target) and not target.startswith("//"):
        return target
    return None


@bp.route("/deconnexion", methods=["POST"])
@login_required
def logout():
    users.end_sessions(db(), current_user)  # every session of the account, copies included
    db().commit()
    logout_user()
    flash("Vous êtes déconnecté·e.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/mot-de-passe", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            users.change_password(db(), vault(), current_user, form.current.data,
                                  form.new.data)
        except InvalidInputError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            login_user(current_user._get_current_object())  # the others ended; this one goes on
            flash("Votre mot de passe a été changé.", "success")
            return redirect(url_for("main.home"))
    return render_template("auth/change_password.html", form=form)


@bp.route("/compte", methods=["GET", "POST"])
@login_required
def account():
    """Per topic, an e-mail at each event or one daily digest."""
    form = FlaskForm()
    topics = notifications.topics_for(current_user)
    if form.validate_on_submit():
        chosen = {topic: request.form.get(f"mode_{topic}", "") for topic in topics}
        try:
            notifications.set_preferences(db(), vault(), current_user, chosen)
        except InvalidInputError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            flash("Vos préférences de notification sont enregistrées.", "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form, topics=topics, modes=MODES,
                           chosen=notifications.preferences(db(), current_user))
