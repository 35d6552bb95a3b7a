"""Word templates uploaded by administrators: checked before use, kept as versions, one active
per kind (the worker uses it, else the built-in file of ``templates_docx/``).

Plain functions, no Flask, no docxtpl. The check itself belongs to the generator
(``generator.template_check``): the web process runs it as a child process,
``python -m generator.check_template``, with CPU, memory and time limits, hands it the file
on stdin and reads its verdict (JSON) on stdout. The administrator gets the verdict at once,
and the uploaded template (Jinja code) is parsed and rendered only in that child: it cannot
hang, exhaust or reach the web process, which never imports docxtpl nor the generator.
See docs/architecture.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.document_variables import BUILTIN_FILES, VARIABLES
from shared.domain import audit
from shared.encrypted import Vault
from shared.errors import DomainError, NotFoundError
from shared.models import TemplateVersion
from shared.models.document import DOCUMENT_KINDS

log = logging.getLogger(__name__)

# The web app refuses request bodies over 2 MB (MAX_CONTENT_LENGTH): the same limit here.
MAX_SIZE = 2 * 1024 * 1024
MAX_SIZE_LABEL = "2 Mo"

# The child process that checks a template: a module name, not an import (the web process
# must not load the generator).
CHECKER = "generator.check_template"
TRIAL_TIMEOUT = 30  # seconds (wall clock and CPU) for the whole check, test render included
TRIAL_MEMORY = 1024 * 1024 * 1024  # bytes of address space for it

_FILENAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\"]")


class TemplateRejectedError(DomainError):
    """An uploaded template that cannot be used; ``message`` says why and where, in French
    (``reason`` is the same without the « Modèle refusé : » prefix).

    ``code`` is a short, stable reason for the audit log."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(f"Modèle refusé : {message}")
        self.reason = message
        self.code = code


# -- checks -----------------------------------------------------------------------------------
def precheck(kind: str, data: bytes) -> None:
    """What is refused before any parsing: an unknown kind, a file over the size limit."""
    if kind not in DOCUMENT_KINDS:
        raise TemplateRejectedError(f"type de document inconnu (« {kind[:40]} »).", "kind")
    if len(data) > MAX_SIZE:
        raise TemplateRejectedError(f"le fichier dépasse {MAX_SIZE_LABEL} "
                                    f"({_size_label(len(data))}).", "size")


def check_template(kind: str, data: bytes) -> None:
    """Raise TemplateRejectedError unless ``data`` is a .docx the worker can fill for ``kind``.

    The checks (archive, macros, links, Jinja syntax, variables of the kind, internal
    attributes, test render in the worker's sandbox, what every document carries) run in
    the generator's child process; its verdict comes back as JSON."""
    precheck(kind, data)
    try:
        result = subprocess.run([sys.executable, "-m", CHECKER, kind], input=data,
                                capture_output=True, timeout=TRIAL_TIMEOUT,
                                preexec_fn=_trial_limits, env=_child_environment(),
                                check=False)
    except subprocess.TimeoutExpired:
        raise TemplateRejectedError("le rendu d'essai dépasse le temps autorisé (boucle trop "
                                    "longue ?).", "render") from None
    verdict = _verdict(result.stdout) if result.returncode == 0 else None
    if verdict is None:
        if result.returncode < 0 or b"MemoryError" in result.stderr:  # killed by a limit
            raise TemplateRejectedError("le rendu d'essai a dépassé la mémoire ou le temps "
                                        "autorisés.", "render")
        log.error("template check failed (exit %s): %s", result.returncode,
                  result.stderr.decode("utf-8", "replace")[-2000:])
        raise TemplateRejectedError("la vérification du modèle n'a pas pu aboutir (erreur "
                                    "interne). Réessayez ; si l'erreur persiste, signalez-la à "
                                    "l'équipe qui exploite l'application.", "checker")
    if not verdict["accepted"]:
        raise TemplateRejectedError(verdict["message"], verdict["code"])


def _verdict(stdout: bytes) -> dict | None:
    """The child's verdict, or None if it printed none."""
    try:
        verdict = json.loads(stdout.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(verdict, dict):
        return None
    if verdict.get("accepted") is True:
        return verdict
    if (verdict.get("accepted") is False and isinstance(verdict.get("message"), str)
            and isinstance(verdict.get("code"), str)):
        return verdict
    return None


def _trial_limits() -> None:  # pragma: no cover - runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (TRIAL_MEMORY, TRIAL_MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (TRIAL_TIMEOUT, TRIAL_TIMEOUT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child_environment() -> dict[str, str]:
    """The web process's environment without the application's settings (database URL,
    secret key, keyring path): the child needs none of them."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith("ICLI_")}


def _size_label(size: int) -> str:
    return f"{-(-size // 1024)} Ko"


# -- versions ---------------------------------------------------------------------------------
def clean_filename(filename: str, kind: str) -> str:
    """The last path component, without control characters, at most 200 characters."""
    name = _FILENAME_CONTROL.sub("", re.split(r"[\\/]", filename or "")[-1]).strip()
    if not name:
        return f"{kind}.docx"
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = (stem[:195 - len(extension)] + dot + extension) if dot else name[:200]
    return name


def upload_template(session: Session, vault: Vault, kind: str, filename: str,
                    data: bytes) -> TemplateVersion:
    """Check ``data`` and store it as the next version of ``kind`` (not active yet), in the
    name of the vault's actor. Audited: ``template_uploaded``, or ``template_rejected`` with
    the reason's code, written even though the caller rolls the refusal back."""
    try:
        check_template(kind, data)
        sha256 = hashlib.sha256(data).hexdigest()
        same = session.scalar(select(TemplateVersion.version).where(
            TemplateVersion.kind == kind, TemplateVersion.sha256 == sha256))
        if same is not None:
            raise TemplateRejectedError(f"ce fichier est identique à la version {same} déjà "
                                        "enregistrée : activez-la plutôt.", "duplicate")
    except TemplateRejectedError as exc:
        _rejected(vault, [], f"{kind} : {exc.code}")
        raise
    last = session.scalar(select(func.max(TemplateVersion.version))
                          .where(TemplateVersion.kind == kind))
    version = TemplateVersion(kind=kind, version=(last or 0) + 1,
                              filename=clean_filename(filename, kind), sha256=sha256,
                              size=len(data), body=data, uploaded_by=vault.actor.user_id,
                              active=False)
    session.add(version)
    session.flush()
    _audit(vault, "template_uploaded", [version.id], kind)
    return version


def _audit(vault: Vault, action: str, ids: list[int], purpose: str) -> None:
    audit.record(vault.session, vault.keyring, vault.actor, action,
                 object_type="template_versions", object_ids=ids, purpose=purpose)


def _rejected(vault: Vault, ids: list[int], purpose: str) -> None:
    audit.record_after(vault.session, vault.keyring, vault.actor, "template_rejected",
                       object_type="template_versions", object_ids=ids, purpose=purpose)


def activate(session: Session, vault: Vault, version: TemplateVersion) -> None:
    """Make ``version`` the one the worker uses for its kind (every other one inactive).

    Checked again first: the context builders may have changed since the upload. Audited
    (``template_activated``, or ``template_rejected``, kept whatever the caller does)."""
    try:
        check_template(version.kind, version.body)
    except TemplateRejectedError as exc:
        _rejected(vault, [version.id], f"{version.kind} : {exc.code} (activation)")
        raise
    # One statement: two administrators activating at once still leave one active version.
    session.execute(update(TemplateVersion).where(TemplateVersion.kind == version.kind)
                    .values(active=TemplateVersion.id == version.id)
                    .execution_options(synchronize_session=False))
    session.flush()
    _expire_active(session, version.kind)
    _audit(vault, "template_activated", [version.id], version.kind)


def deactivate_all(session: Session, vault: Vault, kind: str) -> list[int]:
    """Back to the built-in template of ``kind``; returns the ids that were active. Audited."""
    ids = list(session.scalars(select(TemplateVersion.id).where(
        TemplateVersion.kind == kind, TemplateVersion.active.is_(True))))
    if ids:
        session.execute(update(TemplateVersion).where(TemplateVersion.id.in_(ids))
                        .values(active=False).execution_options(synchronize_session=False))
        session.flush()
        _expire_active(session, kind)
    _audit(vault, "template_deactivated", ids, kind)
    return ids


def download_version(vault: Vault, version: TemplateVersion) -> bytes:
    """An uploaded version's file, for an administrator; audited (``template_downloaded``)."""
    _audit(vault, "template_downloaded", [version.id], version.kind)
    return version.body


def download_builtin(vault: Vault, templates_dir: Path, kind: str) -> tuple[str, bytes]:
    """The built-in file of ``kind`` (its name, its bytes); audited like a version's."""
    path = builtin_template(templates_dir, kind)
    if path is None:
        raise NotFoundError("Pas de modèle intégré pour ce type de document.")
    body = path.read_bytes()
    _audit(vault, "template_downloaded", [], f"{kind} : modèle intégré")
    return path.name, body


def _expire_active(session: Session, kind: str) -> None:
    """Versions already loaded reread their flag after a bulk update."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, TemplateVersion) and obj.kind == kind:
            session.expire(obj, ["active"])


def versions_by_kind(session: Session) -> dict[str, list[TemplateVersion]]:
    """Every uploaded version, newest first, for each document kind."""
    out: dict[str, list[TemplateVersion]] = {kind: [] for kind in DOCUMENT_KINDS}
    rows = session.scalars(select(TemplateVersion).order_by(TemplateVersion.kind,
                                                            TemplateVersion.version.desc()))
    for version in rows:
        out.setdefault(version.kind, []).append(version)
    return out


def builtin_template(templates_dir: Path, kind: str) -> Path | None:
    """The built-in file of ``kind``, if there is one."""
    if kind not in BUILTIN_FILES:
        return None
    path = templates_dir / BUILTIN_FILES[kind]
    return path if path.is_file() else None


def variables(kind: str) -> list[str]:
    """The variables a template of ``kind`` may use, sorted (shown to administrators)."""
    return sorted(VARIABLES.get(kind, ()))
