"""The OpenID Connect client side of sign-in (issue 21), with Authlib's Flask client.

Authlib keeps each sign-in's state and nonce in the session cookie, checks the state on the
way back, and checks the ID token's signature (the provider's JWKS), issuer, audience,
expiry and nonce. This module adds what Authlib leaves to the application: the userinfo
answer as a signed JWT (ProConnect sends it so), its subject against the ID token's, and
turning it all into plain ``ProviderClaims`` for ``shared.domain.sign_in``."""

from __future__ import annotations

from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, request, session
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet
from requests import RequestException

from shared.config import OidcProvider
from shared.domain.sign_in import ProviderClaims

# In the session of an account signed in through a provider: its name and the ID token (the
# provider's logout needs it as a hint).
SESSION_KEY = "sign_in_provider"
# Seconds of clock difference tolerated with the provider on "exp" and "iat".
CLOCK_LEEWAY = 60
HTTP_TIMEOUT = 10


class ProviderAnswerError(Exception):
    """The provider's answer cannot be trusted, or is a refusal; ``reason`` is a short code
    for the audit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def provider_refused(self) -> bool:
        """The provider itself said no (the person cancelled, or is not allowed there)."""
        return self.reason.startswith("provider_said_")


# The error codes of OAuth 2.0 (RFC 6749, 4.1.2.1) and OpenID Connect Core (3.1.2.6).
PROVIDER_ERRORS = {"access_denied", "invalid_request", "unauthorized_client", "invalid_scope",
                   "unsupported_response_type", "server_error", "temporarily_unavailable",
                   "interaction_required", "login_required", "account_selection_required",
                   "consent_required", "invalid_request_uri", "invalid_request_object",
                   "request_not_supported", "request_uri_not_supported",
                   "registration_not_supported"}


def init_app(app: Flask, providers: tuple[OidcProvider, ...]) -> None:
    oauth = OAuth(app)
    for provider in providers:
        oauth.register(provider.name, client_id=provider.client_id,
                       client_secret=provider.client_secret,
                       server_metadata_url=provider.metadata_url,
                       # Authlib's session applies ``default_timeout``; a ``timeout`` here
                       # is kept as metadata and never used (a hung provider held a worker).
                       client_kwargs={"scope": provider.scopes,
                                      "default_timeout": HTTP_TIMEOUT})
    app.extensions["icli_oidc"] = {p.name: (p, oauth.create_client(p.name)) for p in providers}


def signed_in_through_provider() -> bool:
    """Such a session never asks for the password: a one-time password the account was
    created with is not to be changed by someone who signs in through their employer."""
    return SESSION_KEY in session


def provider(name: str) -> OidcProvider | None:
    entry = current_app.extensions["icli_oidc"].get(name)
    return entry[0] if entry else None


def _client(name: str):
    return current_app.extensions["icli_oidc"][name][1]


def authorize_redirect(name: str, callback_url: str):
    """The redirect to the provider's authorization page (state and nonce kept by Authlib)."""
    settings = provider(name)
    extra = {"acr_values": " ".join(settings.acr_values)} if settings.acr_values else {}
    return _client(name).authorize_redirect(callback_url, **extra)


def claims_from_callback(name: str) -> tuple[ProviderClaims, str]:
    """The checked claims of the provider's answer on the callback, and the ID token (kept
    for the provider's logout); ProviderAnswerError when anything does not hold."""
    client = _client(name)
    issuer = provider(name).issuer
    try:
        if client.load_server_metadata().get("issuer") != issuer:
            raise ProviderAnswerError("discovery_issuer")  # OpenID Connect Discovery, 4.3
        # Authlib checks the audience only through azp: a token for another client that
        # names this one as azp would pass. Both are required here.
        token = client.authorize_access_token(leeway=CLOCK_LEEWAY, claims_options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client.client_id}})
        id_claims = token.get("userinfo")
        if id_claims is None:
            raise ProviderAnswerError("no_id_token")
        userinfo = _userinfo(client)
    except MismatchingStateError:
        raise ProviderAnswerError("state") from None
    except ExpiredTokenError:
        raise ProviderAnswerError("expired") from None
    except (InvalidClaimError, MissingClaimError) as exc:
        raise ProviderAnswerError(f"claim_{exc.claim}") from None
    except OAuthError as exc:  # the provider's own "error" (access_denied: cancelled), or ours
        # ``error`` comes from the query string before any state is checked: only the
        # standard codes are kept (anyone could otherwise write text into the audit rows).
        said = exc.error if exc.error in PROVIDER_ERRORS else "other"
        raise ProviderAnswerError(f"provider_said_{said}" if request.args.get("error")
                                  else type(exc).__name__) from None
    except JoseError as exc:
        raise ProviderAnswerError(type(exc).__name__) from None
    except (RequestException, ValueError):
        raise ProviderAnswerError("unreachable_or_malformed") from None
    if userinfo.get("sub") != id_claims["sub"]:
        raise ProviderAnswerError("userinfo_subject")
    merged = {**id_claims, **userinfo}
    return ProviderClaims(
        subject=str(id_claims["sub"]),
        email=str(merged.get("email") or ""),
        email_verified=merged.get("email_verified") is True,
        acr=str(id_claims.get("acr") or ""),
        siret=str(merged.get("siret") or ""),
    ), token["id_token"]


def _userinfo(client) -> dict:
    """The userinfo answer: JSON, or a JWT signed with the provider's keys (ProConnect),
    then bound to this client like the ID token."""
    metadata = client.load_server_metadata()
    response = client.get(metadata["userinfo_endpoint"])
    response.raise_for_status()
    if not response.headers.get("Content-Type", "").startswith("application/jwt"):
        return response.json()
    keys = KeySet.import_key_set(client.fetch_jwk_set())
    claims = jwt.decode(response.text.strip(), keys).claims
    jwt.JWTClaimsRegistry(leeway=CLOCK_LEEWAY,
                          iss={"essential": True, "value": metadata["issuer"]},
                          aud={"essential": True, "value": client.client_id}
                          ).validate(claims)
    return claims


def logout_redirect(name: str, id_token: str, after_url: str):
    """The redirect to the provider's end-session endpoint, or None when it has none."""
    client = _client(name)
    if not client.load_server_metadata().get("end_session_endpoint"):
        return None
    return client.logout_redirect(post_logout_redirect_uri=after_url, id_token_hint=id_token)
