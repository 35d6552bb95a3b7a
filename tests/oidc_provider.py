"""A small OpenID Connect provider for the tests, built with Authlib's server components and
Flask: its own signing key (P-256), a discovery document, JWKS, authorization (a form asking which
e-mail to sign in as), token, userinfo (a signed JWT, as ProConnect sends it) and
end-session endpoints, one registered client.

Run as its own process on 127.0.0.1 by the tests (``start_oidc_provider`` in
tests/helpers.py): ``python -m tests.oidc_provider CLIENT_ID CLIENT_SECRET REDIRECT_PREFIX``.
It prints its address on the first line of its output, then serves until killed.

An authorization may ask for a flaw in the ID token it leads to (``flaw``: wrong_audience,
expired, bad_nonce), so that the client's refusals are tested against a real provider.
Test-only: nothing in the application imports it."""

from __future__ import annotations

import logging
import secrets
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2 import (
    AuthorizationServer,
    ResourceProtector,
    current_token,
)
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import ECKey
from markupsafe import escape
from werkzeug.serving import make_server

FLAWS = ("wrong_audience", "expired", "bad_nonce")
ACR = "eidas1"
SECOND_FACTOR_ACR = "https://proconnect.gouv.fr/assurance/self-asserted-2fa"


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_prefix: str

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return scope

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri.startswith(self.redirect_prefix)

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Person:
    """Who signs in at the provider, and the flaw their next ID token carries."""

    email: str
    acr: str = ACR
    flaw: str = ""
    siret: str = ""

    @property
    def subject(self) -> str:
        return "sub-" + self.email  # the same at every sign-in of that address


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str
    person: Person
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return "not-the-nonce-sent" if self.person.flaw == "bad_nonce" else self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return self.person.acr

    def get_amr(self):
        return None

    def is_expired(self):
        return time.time() - self.auth_time > 300


@dataclass
class Token:
    access_token: str
    scope: str
    person: Person
    issued_at: float = field(default_factory=time.time)

    def get_scope(self):
        return self.scope

    def is_expired(self):
        return time.time() - self.issued_at > 3600

    def is_revoked(self):
        return False


def create_provider(issuer: str, client: Client) -> Flask:
    app = Flask(__name__)
    key = ECKey.generate_key("P-256", parameters={"kid": "test-key", "use": "sig"})
    codes: dict[str, AuthorizationCode] = {}
    tokens: dict[str, Token] = {}
    ended_sessions: list[dict] = []

    def claims_of(person: Person) -> dict:
        claims = {"sub": person.subject, "email": person.email, "email_verified": True,
                  "given_name": "Camille", "usual_name": "Testeuse",
                  "organizational_unit": "Direction de l'insertion"}
        if person.siret:
            claims["siret"] = person.siret
        return claims

    class CodeGrant(grants.AuthorizationCodeGrant):
        def save_authorization_code(self, code, request):
            codes[code] = AuthorizationCode(code, request.client.client_id,
                                            request.payload.redirect_uri,
                                            request.payload.scope,
                                            request.payload.data.get("nonce", ""), request.user)

        def query_authorization_code(self, code, client):
            found = codes.get(code)
            if found and found.client_id == client.client_id and not found.is_expired():
                return found
            return None

        def delete_authorization_code(self, authorization_code):
            codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code):
            return authorization_code.person

    class IdToken(OpenIDCode):
        def exists_nonce(self, nonce, request):
            return any(c.nonce == nonce for c in codes.values())

        def resolve_client_private_key(self, client):
            return key

        def get_client_algorithm(self, client):
            return "ES256"

        def get_encode_header(self, client):
            return {"alg": "ES256", "kid": "test-key"}

        def get_client_claims(self, client):
            return {"iss": issuer, "aud": [client.client_id]}

        def generate_user_info(self, user, scope):
            info = UserInfo(sub=user.subject)
            now = int(time.time())
            if user.flaw == "wrong_audience":  # for another application, naming this one
                info["aud"], info["azp"] = ["another-application"], client.client_id
            elif user.flaw == "expired":
                info["iat"], info["exp"] = now - 7200, now - 3600
            return info

    def save_token(token, request):
        tokens[token["access_token"]] = Token(token["access_token"], token.get("scope", ""),
                                              request.user)

    server = AuthorizationServer(app, query_client=lambda client_id: (
        client if client_id == client.client_id else None), save_token=save_token)
    server.register_grant(CodeGrant, [IdToken(require_nonce=True)])

    class AccessTokens(BearerTokenValidator):
        def authenticate_token(self, token_string):
            return tokens.get(token_string)

    protected = ResourceProtector()
    protected.register_token_validator(AccessTokens())

    @app.get("/.well-known/openid-configuration")
    def discovery():
        return jsonify({
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "end_session_endpoint": f"{issuer}/session/end",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "userinfo_signing_alg_values_supported": ["ES256"],
            "acr_values_supported": [ACR, SECOND_FACTOR_ACR],
            "scopes_supported": ["openid", "email", "siret", "organizational_unit"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
        })

    @app.get("/jwks")
    def jwks():
        return jsonify({"keys": [key.as_dict(private=False)]})

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize():
        if request.method == "GET":
            hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                             for k, v in request.args.items())
            # Posted without the query string: each parameter once (Authlib refuses repeats)
            return (f'<!doctype html><title>Fournisseur de test</title>'
                    f'<form method="post" action="/authorize">'
                    f'{hidden}<label for="email">E-mail</label>'
                    f'<input id="email" name="email"><button>Continuer</button></form>')
        email = request.form.get("email", "")
        person = Person(email=email, acr=request.form.get("acr") or ACR,
                        flaw=request.form.get("flaw", ""), siret=request.form.get("siret", ""))
        grant = server.get_consent_grant(end_user=person)  # checks client, redirect, nonce
        return server.create_authorization_response(grant_user=person if email else None,
                                                    grant=grant)

    @app.post("/token")
    def token():
        return server.create_token_response()

    @app.get("/userinfo")
    @protected(scopes=["openid"])
    def userinfo():
        claims = {**claims_of(current_token.person), "iss": issuer, "aud": client.client_id}
        body = jwt.encode({"alg": "ES256", "kid": "test-key"}, claims, key)
        return body, 200, {"Content-Type": "application/jwt"}

    @app.get("/session/end")
    def end_session():
        ended_sessions.append(dict(request.args))
        target = request.args.get("post_logout_redirect_uri", "")
        if not target.startswith(client.redirect_prefix):
            return "Déconnecté du fournisseur de test."
        return redirect(f"{target}?{urlencode({'state': request.args.get('state', '')})}")

    @app.get("/test/ended-sessions")
    def ended():
        return jsonify(ended_sessions)

    return app


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    client_id, client_secret, redirect_prefix = sys.argv[1:4]
    # Threads: a browser keeps idle connections open (preconnects), the app calls meanwhile.
    server = make_server("127.0.0.1", 0, Flask(__name__), threaded=True)  # its port: issuer
    issuer = f"http://127.0.0.1:{server.server_port}"
    server.app = create_provider(issuer, Client(client_id, client_secret, redirect_prefix))
    print(issuer, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
