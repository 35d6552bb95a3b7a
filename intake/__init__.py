"""The intake web app: create_app(settings) builds it in a short list of steps."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from intake.dates import french_date, paris_time
from intake.ids import RecordIdConverter
from shared.config import Settings, load_settings
from shared.db import make_engine, make_session_factory
from shared.heartbeat import Heartbeat
from shared.keys import load_keyring
from shared.logs import configure_logging
from shared.metrics import web_registry
from shared.migrate import require_current_schema
from shared.passwords import use_fast_hashing
from shared.queue import redis_connection


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings, "web")
    use_fast_hashing(settings.fast_password_hashing)

    app = IntakeFlask(__name__)
    app.url_map.converters["int"] = RecordIdConverter  # before any route is added
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        # Idle timeout (sliding): what was being typed survives it (sheets' form stash).
        PERMANENT_SESSION_LIFETIME=timedelta(hours=2),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_I18N_ENABLED=False,  # WTForms' messages in French from its own catalogue
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops,
                                x_proto=settings.proxy_hops)
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    try:
        require_current_schema(engine)
        keyring = load_keyring(settings, sessions)  # refuses a key the database does not know
    except BaseException:
        engine.dispose()  # the app will not start: its connections are closed, not leaked
        raise
    redis = redis_connection(settings, web=True)
    app.extensions["icli"] = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        keyring=keyring,
        redis=redis,
        heartbeat=Heartbeat("intake", keyring, sessions),
        metrics=web_registry(sessions, redis),
    )

    from intake import access, dbsession, errors, extensions, observability
    from intake.auth import oidc

    observability.init_app(app)  # first: every other hook's log lines carry the request id
    extensions.init_app(app)
    oidc.init_app(app, settings.oidc_providers)
    dbsession.init_app(app)
    access.init_app(app)
    errors.register_error_handlers(app)
    _register_blueprints(app)
    from intake.api.views import init_app as init_api

    init_api(app)  # /api/v1 and its OpenAPI document
    app.add_template_filter(french_date, "date_fr")
    app.add_template_filter(paris_time, "paris")
    return app


def _register_blueprints(app: Flask) -> None:
    from intake.admin.views import bp as admin
    from intake.auth.views import bp as auth
    from intake.convocations.views import bp as convocations
    from intake.dpo.views import bp as dpo
    from intake.followup.views import bp as followup
    from intake.main.views import bp as main
    from intake.meetings.views import bp as meetings
    from intake.sheets.views import bp as sheets
    from intake.signatures.views import bp as signatures

    for blueprint in (main, auth, admin, dpo, meetings, sheets, followup, signatures,
                      convocations):
        app.register_blueprint(blueprint)


class IntakeFlask(Flask):
    def log_exception(self, exc_info) -> None:
        """Silenced: Flask would log the exception's message, which may quote a value.
        The 500 handler logs the type and the code locations with a reference instead."""


class Services:
    """Process-wide objects the views reach through ``current_app.extensions["icli"]``."""

    def __init__(self, *, settings, engine, sessions, keyring, redis, heartbeat,
                 metrics) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.keyring = keyring
        self.redis = redis
        self.heartbeat = heartbeat
        self.metrics = metrics  # the registry /metrics exports
