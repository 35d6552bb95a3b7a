"""Sign-in (password, second factor, OpenID Connect providers), logout, password change,
and the account page (notification preferences, second factor)."""

from __future__ import annotations

import re
from datetime import datetime

import segno
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from requests import RequestException

from intake.auth import oidc
from intake.auth.forms import ChangePasswordForm, EnrolmentForm, LoginForm, SecondFactorForm
from intake.dbsession import db, services, vault
from shared.db import utcnow
from shared.domain import notifications, second_factor, sign_in, users
from shared.errors import DomainError, InvalidInputError, InvalidTransitionError
from shared.models.notification import MODES

bp = Blueprint("auth", __name__)


@bp.route("/connexion", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            outcome = sign_in.with_password(
                db(), vault(), form.email.data, form.password.data, request.remote_addr or "",
                second_factor_everyone=services().settings.second_factor_everyone)
        except InvalidInputError as exc:
            db().commit()  # the failure counters and the audit row
            flash(exc.message, "error")
            return _login_page(form), 401
        db().commit()
        target = _safe_next(request.args.get("next"))
        if outcome.next_step == sign_in.SIGNED_IN:
            _log_in(outcome.user)
            return redirect(target or url_for("main.home"))
        flask_session[_PENDING] = {"user": outcome.user.id,
                                   "version": outcome.user.session_version,
                                   "at": utcnow().isoformat(), "next": target}
        if outcome.next_step == sign_in.CODE_NEEDED:
            return redirect(url_for("auth.second_factor_code"))
        return redirect(url_for("auth.second_factor_enrolment"))
    return _login_page(form)


_SAFE_PATH = re.compile(r"/[A-Za-z0-9\-._~/]*")


def _safe_next(target: str | None) -> str | None:
    """A plain path of this site only (no scheme, host, whitespace or query): never an open
    redirect, whatever the browser would make of backslashes or control characters."""
    if target and _SAFE_PATH.fullmatch(target) and not target.startswith("//"):
        return target
    return None


def _login_page(form: LoginForm) -> str:
    return render_template("auth/login.html", form=form,
                           providers=services().settings.oidc_providers)


def _log_in(user) -> None:
    flask_session.pop(_PENDING, None)
    flask_session.pop(oidc.SESSION_KEY, None)  # a provider's sign-in sets it again after this
    login_user(user)
    flask_session.permanent = True  # idle timeout: PERMANENT_SESSION_LIFETIME, sliding


# Between the password and the second factor: the account, its session version, when.
_PENDING = "sign_in_pending"
# Where to go once a provider vouched for the account.
_PROVIDER_NEXT = "sign_in_provider_next"


def _pending() -> sign_in.Pending | None:
    data = flask_session.get(_PENDING)
    if not isinstance(data, dict):
        return None
    try:
        return sign_in.Pending(int(data["user"]), int(data["version"]),
                               datetime.fromisoformat(data["at"]))
    except (KeyError, TypeError, ValueError):
        return None


def _restart_sign_in(message: str):
    flask_session.pop(_PENDING, None)
    flash(message, "error")
    return redirect(url_for("auth.login"))


@bp.route("/connexion/code", methods=["GET", "POST"])
def second_factor_code():
    pending = _pending()
    if pending is None:
        return redirect(url_for("auth.login"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        try:
            user = sign_in.with_second_factor(db(), vault(), pending, form.code.data,
                                              request.remote_addr or "")
        except (sign_in.SignInExpiredError, InvalidTransitionError) as exc:
            db().commit()  # the audit row; the factor may have been reset meanwhile
            return _restart_sign_in(exc.message)
        except InvalidInputError as exc:
            db().commit()  # the failure counters and the audit row
            flash(exc.message, "error")
            return render_template("auth/second_factor_code.html", form=form), 401
        db().commit()
        target = flask_session[_PENDING].get("next")
        _log_in(user)
        return redirect(target or url_for("main.home"))
    return render_template("auth/second_factor_code.html", form=form)


@bp.route("/connexion/activation-second-facteur", methods=["GET", "POST"])
def second_factor_enrolment():
    """An account that must have a second factor and has none: between its password and
    its first code, it adds the secret to an application."""
    pending = _pending()
    if pending is None:
        return redirect(url_for("auth.login"))
    form = EnrolmentForm()
    if form.validate_on_submit():
        try:
            user, codes = sign_in.with_enrolment(db(), vault(), pending, form.code.data,
                                                 request.remote_addr or "")
        except (sign_in.SignInExpiredError, InvalidTransitionError) as exc:
            db().commit()  # the audit row; enrolled meanwhile (another tab)
            return _restart_sign_in(exc.message)
        except InvalidInputError as exc:
            db().commit()  # the failure counters and the audit row
            flash(exc.message, "error")
        else:
            db().commit()
            target = flask_session[_PENDING].get("next")
            _log_in(user)
            return render_template("auth/recovery_codes.html", codes=codes,
                                   target=target or url_for("main.home"))
    try:
        enrolment = sign_in.start_enrolment(db(), vault(), pending)
    except DomainError as exc:  # expired, or enrolled meanwhile (another tab)
        return _restart_sign_in(exc.message)
    db().commit()
    return _enrolment_page(form, enrolment, mandatory=True)


def _enrolment_page(form: EnrolmentForm, enrolment, *, mandatory: bool) -> str:
    # segno writes the SVG itself (a path, and the title escaped): no value of ours but the
    # otpauth URI, encoded in the path's geometry.
    qr_svg = segno.make(enrolment.uri.reveal(), error="m").svg_inline(
        scale=5, omitsize=True, title="QR code à scanner")
    return render_template("auth/second_factor_enrolment.html", form=form,
                           secret=enrolment.secret, qr_svg=Markup(qr_svg),  # noqa: S704
                           mandatory=mandatory)


@bp.route("/compte/second-facteur", methods=["GET", "POST"])
@login_required
def account_second_factor():
    """An account whose second factor is optional turns it on from its account page."""
    form = EnrolmentForm()
    if form.validate_on_submit():
        try:
            codes = second_factor.confirm_enrolment(db(), vault(), current_user,
                                                    form.code.data, request.remote_addr or "")
        except (InvalidInputError, InvalidTransitionError) as exc:
            db().commit()  # the failure counters
            flash(exc.message, "error")
        else:
            db().commit()
            return render_template("auth/recovery_codes.html", codes=codes,
                                   target=url_for("auth.account"))
    try:
        enrolment = second_factor.start_enrolment(db(), vault(), current_user)
    except InvalidTransitionError as exc:
        flash(exc.message, "info")
        return redirect(url_for("auth.account"))
    db().commit()
    return _enrolment_page(form, enrolment, mandatory=False)


@bp.route("/connexion/oidc/<name>")
def oidc_start(name: str):
    """The button « Se connecter avec … »: off to the provider (a link, not a form: the
    pages' Content-Security-Policy lets forms post to this site only)."""
    if oidc.provider(name) is None:
        abort(404)
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    flask_session[_PROVIDER_NEXT] = _safe_next(request.args.get("next"))
    try:
        return oidc.authorize_redirect(name, _external(url_for("auth.oidc_callback",
                                                               name=name)))
    except RequestException:  # its discovery document could not be read
        return _restart_sign_in(f"{oidc.provider(name).label} ne répond pas pour le moment : "
                                "réessayez plus tard, ou connectez-vous avec votre mot de "
                                "passe.")


@bp.route("/connexion/oidc/<name>/retour")
def oidc_callback(name: str):
    provider = oidc.provider(name)
    if provider is None:
        abort(404)
    try:
        claims, id_token = oidc.claims_from_callback(name)
    except oidc.ProviderAnswerError as exc:
        sign_in.provider_refused(db(), vault(), name, exc.reason)
        db().commit()
        if exc.provider_refused:
            return _restart_sign_in(f"{provider.label} n'a pas confirmé votre identité "
                                    "(connexion annulée ou refusée).")
        return _restart_sign_in(f"La connexion par {provider.label} a échoué : sa réponse "
                                "n'a pas pu être vérifiée. Recommencez.")
    try:
        user = sign_in.with_provider(
            db(), vault(), provider, claims,
            second_factor_everyone=services().settings.second_factor_everyone)
    except InvalidInputError as exc:
        db().commit()  # the audit row
        return _restart_sign_in(exc.message)
    db().commit()
    _log_in(user)
    flask_session[oidc.SESSION_KEY] = {"name": name, "id_token": id_token}
    return redirect(flask_session.pop(_PROVIDER_NEXT, None) or url_for("main.home"))


def _external(path: str) -> str:
    """The address the provider sends the browser back to, as registered with it."""
    return services().settings.base_url + path


@bp.route("/deconnexion", methods=["POST"])
@login_required
def logout():
    users.end_sessions(db(), current_user)  # every session of the account, copies included
    db().commit()
    logout_user()
    provider = flask_session.pop(oidc.SESSION_KEY, None)
    if provider and oidc.provider(provider["name"]) is not None:
        # Signed out of the provider too: the next person at this computer must sign in
        # there again (ProConnect's rule).
        try:
            redirect_to_provider = oidc.logout_redirect(
                provider["name"], provider["id_token"], _external(url_for("auth.logged_out")))
        except RequestException:  # unreachable: logged out here, at least
            redirect_to_provider = None
        if redirect_to_provider is not None:
            return redirect_to_provider
    return redirect(url_for("auth.logged_out"))


@bp.route("/deconnexion/fin")
def logged_out():
    """Where the provider's logout sends the browser back (and a local logout ends)."""
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
                           chosen=notifications.preferences(db(), current_user),
                           second_factor=second_factor.status(db(), current_user))
