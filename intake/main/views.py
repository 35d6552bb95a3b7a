"""Home page (each role's work queue), the health checks (/healthz: alive, /readyz: ready
to serve) and the Prometheus metrics (/metrics, for a scraper holding the token)."""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required

from intake.dbsession import db, services
from shared import metrics
from shared.domain.retention import Policy
from shared.domain.work_queue import work_queue
from shared.readiness import OK, readiness

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def home():
    """Each role's work queue: what waits on this user, with links to it."""
    queue = work_queue(db(), current_user,
                       retention_policy=Policy.from_settings(services().settings))
    return render_template("main/home.html", queue=queue)


@bp.route("/accessibilite")
def accessibility():
    """The accessibility statement (RGAA): public, like the login page it is linked from."""
    return render_template("main/accessibility.html")


@bp.route("/healthz")
def healthz():
    """Alive: the process answers (what a restart would fix is not asked here)."""
    return {"status": "ok"}


@bp.route("/readyz")
def readyz():
    """Ready to serve: database, Redis, keyring and a live worker (shared/readiness.py);
    503 with the failed checks named otherwise."""
    icli = services()
    checks = readiness(icli.settings, icli.sessions, icli.redis)
    ready = all(outcome == OK for outcome in checks.values())
    return {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503


@bp.route("/metrics")
def prometheus_metrics():
    """For Prometheus, with ``Authorization: Bearer <ICLI_METRICS_TOKEN>``; 404 while no
    token is set (the figures say how busy the service is: not for anyone who asks)."""
    token = services().settings.metrics_token
    if not token:
        abort(404)
    if not hmac.compare_digest(request.headers.get("Authorization", "").encode(),
                               f"Bearer {token}".encode()):
        abort(401)
    return (metrics.exposition(services().metrics), 200,
            {"Content-Type": metrics.CONTENT_TYPE, "Cache-Control": "no-store"})
