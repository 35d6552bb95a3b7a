"""/api/v1: import (the CSV import of the admin page), export of pseudonymised decisions and
of statistics. Authenticated by per-client bearer tokens (shared/domain/api_clients.py), not
by the login session: no CSRF token (nothing here reads the session cookie), and every call,
refused ones included, is an audit row.

flask-smorest rather than APIFlask: it is a Blueprint extension on the plain Flask app, so the
app factory, its ``Flask`` subclass, the other blueprints and their error pages stay as they
are; APIFlask replaces the application class and its error handling for the whole site.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, request
from flask_smorest import Api, Blueprint, abort
from werkzeug.exceptions import HTTPException, InternalServerError

from intake.api.schemas import (
    DecisionSchema,
    ImportReportSchema,
    ImportRequest,
    PeriodArgs,
    StatisticsArgs,
    StatisticsSchema,
)
from intake.dbsession import db, services
from intake.extensions import csrf
from shared.domain import account_import, api_clients, api_export
from shared.encrypted import Vault
from shared.errors import DomainError, ForbiddenError, InvalidInputError, NotFoundError
from shared.models import ApiClient

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1",
               description="Import et export pour les systèmes d'information du département")
BEARER = {"bearerAuth": []}


class IcliApi(Api):
    def _register_error_handlers(self) -> None:
        """JSON errors for the API's own blueprint only (``init_app``): the site's pages keep
        their French HTML error pages."""


def init_app(app: Flask) -> None:
    app.config.update(
        API_TITLE="ICL-I", API_VERSION="1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1", OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer"}}}},
    )
    api = IcliApi(app)
    app.extensions["icli_api"] = api
    api.register_blueprint(bp)


csrf.exempt(bp)


def _json_error(error: HTTPException):
    """JSON with a French message, never the exception's text (it may quote a value); an
    internal error rolls the request back (its audit row is then written alone)."""
    if error.code == 500:
        db().rollback()
        log.error("internal error in the API type=%s", type(
            getattr(error, "original_exception", None) or error).__name__)
        error = InternalServerError()
        error.data = {"message": "Erreur interne : rien n'a été enregistré."}
    data = getattr(error, "data", None)
    if error.code == 422 and isinstance(data, dict) and "message" not in data:
        # webargs' own words per field stay in "errors" (they never quote the value)
        data["message"] = "Paramètres invalides : le détail par champ est dans « errors »."
    return current_app.extensions["icli_api"].handle_http_exception(error)


# The site's French HTML pages answer these codes (intake/errors.py); Flask prefers an
# application's handler for a code to a blueprint's for a class, so each code is named here.
bp.register_error_handler(HTTPException, _json_error)
for _code in (400, 403, 404, 405, 413, 500):
    bp.register_error_handler(_code, _json_error)


def _client(scope: str) -> ApiClient:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        client = api_clients.authenticate(db(), token.strip() if scheme.lower() == "bearer"
                                          else "", scope)
    except ForbiddenError as exc:
        abort(403, message=exc.message)
    except InvalidInputError as exc:
        abort(401, message=exc.message, headers={"WWW-Authenticate": "Bearer"})
    g.api_client_id = client.id
    return client


def _vault(client: ApiClient) -> Vault:
    return Vault(db(), services().keyring, api_clients.actor(client))


@bp.after_request
def _audit_call(response):
    """One audit row per call, whatever its outcome; committed with what the call did (a
    view that failed has rolled its work back already)."""
    api_clients.record_call(db(), services().keyring, g.get("api_client_id"),
                            request.endpoint or "", response.status_code)
    db().commit()
    return response


@bp.route("/imports", methods=["POST"])
@bp.arguments(ImportRequest)
@bp.response(200, ImportReportSchema)
@bp.alt_response(400, schema=ImportReportSchema,
                 description="Fichier refusé : les erreurs, rien n'est enregistré.")
@bp.doc(security=[BEARER])
def import_csv(body: dict):
    """Importer des circonscriptions, structures, comptes ou membres (droit « import »).

    Le même import que la page d'administration : tout ou rien, erreurs en français avec
    leur numéro de ligne, vérification seule par défaut (``dry_run``)."""
    client = _client("import")
    # A lone surrogate cannot be UTF-8: kept as is, it is refused as a non-UTF-8 line.
    data = body["csv"].encode("utf-8", "surrogatepass")
    report = account_import.import_csv(db(), _vault(client), body["kind"], data,
                                       dry_run=body["dry_run"])
    if report.error_count:
        db().rollback()
        return ImportReportSchema().dump(report), 400
    return report


@bp.route("/decisions", methods=["GET"])
@bp.arguments(PeriodArgs, location="query")
@bp.response(200, DecisionSchema(many=True))
@bp.doc(security=[BEARER])
def decisions(period: dict):
    """Les avis des séances tenues sur la période, pseudonymisés (droit « export »).

    Référence, pseudonyme, séance, avis, préconisations et décision formelle ; jamais
    d'identité."""
    client = _client("export")
    try:
        return api_export.export_decisions(db(), _vault(client), period["since"],
                                           period["until"])
    except InvalidInputError as exc:
        db().rollback()
        abort(422, message=exc.message)


@bp.route("/statistics", methods=["GET"])
@bp.arguments(StatisticsArgs, location="query")
@bp.response(200, StatisticsSchema)
@bp.doc(security=[BEARER])
def statistics(args: dict):
    """Les chiffres mensuels d'une circonscription (droit « export »), des comptes
    seulement."""
    _client("export")
    try:
        return api_export.statistics(db(), args["circonscription"], args["year"],
                                     args["month"])
    except NotFoundError as exc:
        abort(404, message=exc.message)
    except DomainError as exc:
        abort(422, message=exc.message)
