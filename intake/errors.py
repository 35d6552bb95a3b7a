"""Error pages in French; a 500 rolls back and shows a reference, details go to the log."""

from __future__ import annotations

import logging
import secrets
import traceback

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("Requête invalide", "La requête n'a pas pu être traitée."),
    403: ("Accès refusé", "Vous n'avez pas accès à cette page."),
    404: ("Page introuvable", "Cette page n'existe pas ou ne vous est pas accessible."),
    405: ("Action non permise", "Cette action n'est pas permise ici."),
    413: ("Envoi trop volumineux", "Les données envoyées sont trop volumineuses."),
}


def error_page(code: int, title: str, message: str, reference: str | None = None):
    """A French error page (title, message, optional support reference) with its status."""
    return render_template("errors/error.html", code=code, title=title, message=message,
                           reference=reference), code


DRAIN_LIMIT = 64 * 2**20  # a refused body is read to its end up to this size


def _drain_refused_body(response):
    """A refused upload (413) is read to its end before the answer: a server that answers and
    closes while the browser is still sending makes it show "connection reset" instead of
    the French page."""
    if response.status_code == 413:
        stream, left = request.environ["wsgi.input"], min(request.content_length or 0,
                                                          DRAIN_LIMIT)
        while left > 0 and (chunk := stream.read(min(left, 2**16))):
            left -= len(chunk)
    return response


def register_error_handlers(app: Flask) -> None:
    page = error_page
    app.after_request(_drain_refused_body)

    for code, (title, message) in MESSAGES.items():
        app.register_error_handler(code, lambda _e, c=code, t=title, m=message: page(c, t, m))

    @app.errorhandler(CSRFError)
    def _csrf(_error):
        if request.endpoint == "sheets.edit" and request.view_args:
            # An expired session must not lose a sheet being typed: keep it for review.
            from intake.sheets.views import stash_and_relogin

            return stash_and_relogin(request.view_args["sheet_id"])
        return page(400, "Formulaire expiré",
                    "Le formulaire a expiré ou n'est pas valide. Rechargez la page et "
                    "recommencez : rien n'a été enregistré.")

    @app.errorhandler(500)
    def _internal(error):
        from flask import g

        session = g.get("db")
        if session is not None:
            session.rollback()
        reference = secrets.token_hex(4).upper()
        # The exception type only: messages of third-party errors may quote values.
        original = getattr(error, "original_exception", None) or error
        where = "; ".join(f"{f.filename}:{f.lineno}"
                          for f in traceback.extract_tb(original.__traceback__)[-5:])
        log.error("internal error ref=%s type=%s at %s", reference,
                  type(original).__name__, where)
        return page(500, "Erreur interne",
                    "Une erreur est survenue. Rien n'a été perdu de ce qui était enregistré. "
                    "Communiquez cette référence à l'assistance :", reference)
