"""Administrators: encryption keys (status, add, promote, rotate, retire), never a key itself.

Registered on the admin blueprint by the last line of intake/admin/views.py. Every step asks
for an explicit confirmation and is an audit event (shared/domain/rotation.py writes it). The
rotation runs in this process, in a background thread: the document worker cannot do it, as it
never holds the identity and index chains. It is resumable: if this process stops, the page
shows it interrupted and "Reprendre" continues from its checkpoint.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from intake.access import role_required
from intake.admin.views import bp
from intake.dbsession import actor, db, services
from shared.crypto import CryptoError
from shared.db import utcnow
from shared.domain import rotation
from shared.errors import DomainError
from shared.models import KeyRotation

log = logging.getLogger(__name__)

CHAINS = {"identity": "Identité", "content": "Contenu des fiches et documents",
          "index": "Index de doublons", "audit": "Journal d'audit",
          "jobs": "Signature des tâches"}
STATES = {"primary": "Principale", "active": "Ajoutée (pas encore utilisée)",
          "retiring": "À retirer", "retired": "Retirée"}
STALLED_AFTER = timedelta(seconds=30)  # a running rotation silent this long was interrupted
_threads: dict[str, threading.Thread] = {}  # rotations running in this process, by chain


def _confirmed() -> bool:
    if request.form.get("confirmer") == "oui":
        return True
    flash("Cochez la case de confirmation pour lancer cette opération.", "error")
    return False


def _back():
    return redirect(url_for("admin.keys"))


def _refused(exc: Exception):
    db().rollback()
    message = exc.message if isinstance(exc, DomainError) else str(exc)
    flash(f"Opération refusée : {message}", "error")
    return _back()


def _rotations() -> list[dict]:
    rows = db().scalars(select(KeyRotation).order_by(KeyRotation.id.desc()).limit(10))
    now = utcnow()
    return [{"chain": r.chain, "label": CHAINS.get(r.chain, r.chain),
             "version": r.target_version, "done": r.done, "total": r.total,
             "status": ("terminée" if r.status == "done" else
                        "en cours" if now - r.updated_at < STALLED_AFTER
                        or _running(r.chain) else "interrompue"),
             "percent": int(100 * r.done / r.total) if r.total else 100} for r in rows]


def _running(chain: str) -> bool:
    thread = _threads.get(chain)
    return thread is not None and thread.is_alive()


@bp.route("/cles")
@role_required("admin")
def keys():
    report = rotation.status(db(), services().keyring)
    rotations = _rotations()
    db().commit()
    return render_template("admin/keys.html", report=report, chains=CHAINS, states=STATES,
                           rotations=rotations,
                           writable=_keyring_writable())


@bp.route("/cles/rotations.json")
@role_required("admin")
def keys_rotations():
    return {"rotations": _rotations()}


def _keyring_writable() -> bool:
    """Where the keyring is a read-only secret (compose), the steps that edit it are done
    with `icli keys …` on the server; the page says so."""
    path = services().settings.keyring_path
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _step(operation, success: str):
    """One confirmed step on the keyring file; refusals are shown, nothing half done stays."""
    if not _confirmed():
        return _back()
    try:
        outcome = operation(db(), services().settings.keyring_path, services().keyring)
    except (DomainError, CryptoError, OSError) as exc:
        return _refused(exc)
    db().commit()
    flash(success.format(outcome=outcome), "success")
    return _back()


@bp.route("/cles/<any(identity, content, index, audit, jobs):chain>/ajouter", methods=["POST"])
@role_required("admin")
def key_add(chain: str):
    return _step(lambda session, path, ring: rotation.add(session, path, ring, chain, actor()),
                 f"Version {{outcome}} ajoutée à la chaîne « {CHAINS[chain]} ». Attendez que "
                 "tous les processus la détiennent, puis promouvez-la.")


@bp.route("/cles/<any(identity, content, index, audit, jobs):chain>/<int:version>/promouvoir",
          methods=["POST"])
@role_required("admin")
def key_promote(chain: str, version: int):
    return _step(lambda session, path, ring: rotation.promote(session, path, ring, chain,
                                                              version, actor()),
                 f"Version {version} principale pour « {CHAINS[chain]} » : lancez la rotation.")


@bp.route("/cles/<any(identity, content, index, audit, jobs):chain>/<int:version>/retirer",
          methods=["POST"])
@role_required("admin")
def key_retire(chain: str, version: int):
    return _step(lambda session, path, ring: rotation.retire(session, path, ring, chain,
                                                             version, actor()),
                 f"Version {version} retirée de « {CHAINS[chain]} » ({{outcome}} clés "
                 "vérifiées). Les processus actifs qui la détiennent encore (colonne "
                 "ci-dessous) la quittent à leur prochaine requête ou tâche.")


@bp.route("/cles/<any(identity, content, index):chain>/rotation", methods=["POST"])
@role_required("admin")
def key_rotate(chain: str):
    if not _confirmed():
        return _back()
    if _running(chain):
        flash("Une rotation de cette chaîne est déjà en cours.", "info")
        return _back()
    app_services, who = services(), actor()

    def run() -> None:
        try:
            result = rotation.rotate(app_services.sessions, app_services.keyring, chain, who,
                                     index_bits=app_services.settings.index_bits)
            if result.undecryptable:  # ids only; each failure is in the audit log too
                log.error("key rotation of %s left %d undecryptable record(s): ids %s", chain,
                          len(result.undecryptable), ", ".join(map(str, result.undecryptable)))
        except Exception as exc:  # resumable: the page shows it interrupted
            log.error("key rotation of %s stopped: %s", chain, type(exc).__name__)

    thread = threading.Thread(target=run, name=f"rotation-{chain}", daemon=True)
    _threads[chain] = thread
    thread.start()
    flash(f"Rotation de « {CHAINS[chain]} » lancée : la progression s'affiche ci-dessous.",
          "success")
    return _back()
