"""Who may do what: the user loader, role checks as decorators, scope checks as helpers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, abort, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload

from intake.auth import oidc
from intake.dbsession import db
from intake.extensions import login_manager
from shared.domain.users import paris_today
from shared.models import Meeting, User

# Endpoints a user who must change their password can still reach.
_PASSWORD_CHANGE_ALLOWED = {"auth.change_password", "auth.logout", "static", "main.healthz",
                             "main.readyz", "main.prometheus_metrics"}


def role_required(*roles: str) -> Callable:
    """Logged in, active, and holding one of ``roles``; 403 otherwise."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not any(current_user.has_role(role) for role in roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # read by the route-walking test
        return wrapped

    return decorator


def meeting_in_scope(meeting_id: int) -> Meeting:
    """A meeting of one of the facilitator's circonscriptions; 404 for anything else."""
    meeting = db().get(Meeting, meeting_id)
    if meeting is None or meeting.circonscription_id not in current_user.circonscription_ids:
        abort(404)
    return meeting


def init_app(app: Flask) -> None:
    @login_manager.user_loader
    def load_user(session_id: str) -> User | None:
        # "<user id>:<session version>" (User.get_id): a cookie issued before the version
        # was raised (logout, password change, deactivation) no longer names anyone; nor
        # one of an account outside its habilitation dates, from their first day on.
        user_id, _, version = session_id.partition(":")
        if not (user_id.isdigit() and version.isdigit()):
            return None
        # One query for the user and their roles: this runs on every request.
        user = db().get(User, int(user_id), options=[joinedload(User.roles)])
        if (user is None or not user.active or user.session_version != int(version)
                or not user.habilitated_on(paris_today())):
            return None
        return user

    @app.before_request
    def _force_password_change():
        if (current_user.is_authenticated and current_user.must_change_password
                and request.endpoint not in _PASSWORD_CHANGE_ALLOWED
                and not oidc.signed_in_through_provider()):
            return redirect(url_for("auth.change_password"))
        return None

    settings = app.extensions["icli"].settings
    production = settings.is_production
    # The logout form's answer leads to the OpenID Connect provider's logout, and browsers
    # hold a form's redirects to form-action too.
    form_targets = " ".join(["'self'", *sorted({_origin(p.issuer)
                                                for p in settings.oidc_providers})])

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            f"frame-ancestors 'none'; form-action {form_targets}; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint != "static":
            # Pages and downloads may carry personal data: never kept in a shared or browser
            # cache. Set over send_file's "no-cache", which still lets a browser store them.
            response.headers["Cache-Control"] = "no-store"
        if production:
            # Browsers refuse plain HTTP for a year once they have seen this over HTTPS.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
