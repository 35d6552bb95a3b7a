"""One database session and one Vault per request, closed at teardown."""

from __future__ import annotations

from flask import Flask, current_app, g
from flask_login import current_user
from sqlalchemy.orm import Session

from shared.domain import audit
from shared.encrypted import Vault


def services():
    return current_app.extensions["icli"]


def db() -> Session:
    if "db" not in g:
        g.db = services().sessions()
    return g.db


def vault() -> Vault:
    """The request's Vault, acting as the logged-in user (audit rows name them)."""
    if "vault" not in g:
        g.vault = Vault(db(), services().keyring, actor())
    return g.vault


def actor() -> audit.Actor:
    if current_user.is_authenticated:
        return audit.Actor(current_user.id, "user")
    return audit.Actor(None, "anonymous")


def init_app(app: Flask) -> None:
    @app.before_request
    def _heartbeat() -> None:
        # Follow the keyring file and report the versions held (at most every 15 s); a
        # process idle for long reloads here, before its first use of a key.
        services().heartbeat.beat()

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        g.pop("vault", None)
        if session is not None:
            session.rollback()  # views commit explicitly; anything left is abandoned
            session.close()
