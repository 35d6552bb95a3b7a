"""Clients of the HTTP API: systems of the département holding a token an administrator
created, scoped (``import``, ``export``) and with an expiry. Only the token's SHA-256 is
stored; every call is an audit row naming the client, the operation and the status."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.crypto import KeyRing
from shared.db import paris_to_utc, utcnow
from shared.domain import audit
from shared.encrypted import Vault
from shared.errors import ForbiddenError, InvalidInputError
from shared.models import ApiClient
from shared.models.user import API_SCOPES
from shared.text import clean_text

TOKEN_PREFIX = "icli_"  # noqa: S105 (marks our tokens, e.g. for secret scanners)
MAX_LIFETIME = timedelta(days=2 * 366)  # a token is renewed at least every two years
REFUSED = "Jeton d'API absent, inconnu, expiré ou révoqué."


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor(client: ApiClient) -> audit.Actor:
    return audit.Actor(None, f"api_client:{client.id}")


def create_client(session: Session, vault: Vault, *, name: str, scopes: list[str],
                  expires_on: date, today: date) -> tuple[ApiClient, str]:
    """An administrator creates a client; returns it and its token, shown once. The token
    works until the end of ``expires_on`` (Paris). Audited (``api_client_created``, with
    its scopes)."""
    name = clean_text(name, label="Nom", limit=120, required=True)
    if not scopes or set(scopes) - set(API_SCOPES):
        raise InvalidInputError("Choisissez au moins un droit parmi import et export.")
    if expires_on < today:
        raise InvalidInputError("La date d'expiration est passée.")
    if expires_on - today > MAX_LIFETIME:
        raise InvalidInputError("Un jeton vaut deux ans au plus : renouvelez-le ensuite.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(name=name, token_hash=token_digest(token),
                       scopes=",".join(sorted(set(scopes))),
                       expires_at=paris_to_utc(datetime.combine(expires_on + timedelta(days=1),
                                                                time())),
                       created_by=vault.actor.user_id)
    session.add(client)
    session.flush()
    audit.record(session, vault.keyring, vault.actor, "api_client_created",
                 object_type="api_clients", object_ids=[client.id], fields=sorted(set(scopes)))
    return client, token


def revoke_client(session: Session, vault: Vault, client: ApiClient) -> None:
    """The token stops working at once; audited (``api_client_revoked``)."""
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        session.flush()
    audit.record(session, vault.keyring, vault.actor, "api_client_revoked",
                 object_type="api_clients", object_ids=[client.id])


def clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.created_at.desc())))


def authenticate(session: Session, token: str, scope: str,
                 now: datetime | None = None) -> ApiClient:
    """The client holding ``token``, if it is valid now and has ``scope``; else
    ForbiddenError (``InvalidInputError`` for a missing or unknown token: the caller answers
    401 to that, 403 to a missing scope)."""
    now = now or utcnow()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise InvalidInputError(REFUSED)
    digest = token_digest(token)
    client = session.scalar(select(ApiClient).where(ApiClient.token_hash == digest))
    if (client is None or not hmac.compare_digest(client.token_hash, digest)
            or client.revoked_at is not None or client.expires_at <= now):
        raise InvalidInputError(REFUSED)
    if scope not in client.scope_set:
        raise ForbiddenError(f"Ce jeton n'a pas le droit « {scope} ».")
    client.last_used_at = now
    return client


def record_call(session: Session, keyring: KeyRing, client_id: int | None, operation: str,
                status: int) -> None:
    """The audit row of one API call, refused ones included (``api_call``: the client when
    known, the operation and the HTTP status; never a parameter or a body)."""
    who = audit.Actor(None, f"api_client:{client_id}" if client_id else "api_anonymous")
    audit.record(session, keyring, who, "api_call", object_type="api_clients",
                 object_ids=[client_id] if client_id else [],
                 purpose=f"{operation} {status}")
