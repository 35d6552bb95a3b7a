"""Administrators: the Word templates of the documents (upload, check, versions, activation).

Registered on the admin blueprint by the last line of intake/admin/views.py. An uploaded
template is checked before it is stored (shared/domain/templates.py runs the generator's check
in a child process: this process never loads docxtpl), and used by the worker only once
activated; "revenir au modèle intégré" hands back to the file of templates_docx/.
"""

from __future__ import annotations

import io

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import SubmitField

from intake.access import role_required
from intake.admin.views import bp
from intake.dates import paris_time
from intake.dbsession import db, services, vault
from intake.errors import MESSAGES, error_page
from intake.forms import Form
from shared.domain import templates
from shared.errors import NotFoundError
from shared.models import TemplateVersion, User
from shared.models.document import DOCUMENT_KINDS

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TOO_LARGE = (f"Modèle refusé : le fichier dépasse {templates.MAX_SIZE_LABEL}. Allégez-le (images "
             "compressées, logos plus légers) puis envoyez-le de nouveau.")


class TemplateUploadForm(Form):
    file = FileField(f"Nouvelle version (.docx, {templates.MAX_SIZE_LABEL} au plus)",
                     validators=[FileRequired("Choisissez un fichier .docx."),
                                 FileAllowed(["docx"], "Seuls les fichiers Word .docx sont "
                                                       "acceptés.")])
    submit = SubmitField("Envoyer et vérifier")


def _kind_or_404(kind: str) -> str:
    if kind not in DOCUMENT_KINDS:
        abort(404)
    return kind


def _page(errors: dict[str, list[str]] | None = None, status: int = 200):
    """The list of kinds, their built-in file and versions; ``errors`` by kind."""
    session = db()
    versions = templates.versions_by_kind(session)
    uploader_ids = {v.uploaded_by for rows in versions.values() for v in rows if v.uploaded_by}
    uploaders = {row.id: row.full_name for row in session.execute(
        select(User.id, User.full_name).where(User.id.in_(uploader_ids)))} if uploader_ids else {}
    templates_dir = services().settings.templates_dir
    builtins = {kind: templates.builtin_template(templates_dir, kind) for kind in DOCUMENT_KINDS}
    # Not bound to the request: the page is also shown when the body was refused (413).
    form = TemplateUploadForm(formdata=None)
    return render_template("admin/templates.html", kinds=DOCUMENT_KINDS, versions=versions,
                           uploaders=uploaders, builtins=builtins, form=form,
                           variables={kind: templates.variables(kind) for kind in DOCUMENT_KINDS},
                           errors=errors or {}, when=paris_time,
                           max_size=templates.MAX_SIZE_LABEL), status


@bp.route("/modeles")
@role_required("admin")
def templates_list():
    return _page()


@bp.route("/modeles/<kind>/envoyer", methods=["POST"])
@role_required("admin")
def template_upload(kind: str):
    _kind_or_404(kind)
    form = TemplateUploadForm()
    if not form.validate_on_submit():
        messages = [m for name, errs in form.errors.items() if name != "csrf_token" for m in errs]
        return _page({kind: messages or ["Le formulaire n'est pas valide."]})
    upload = form.file.data
    data = upload.read(templates.MAX_SIZE + 1)
    try:
        version = templates.upload_template(db(), vault(), kind, upload.filename or "", data)
    except templates.TemplateRejectedError as exc:
        db().rollback()  # nothing of the file is kept (the refusal's audit row is)
        return _page({kind: [exc.message]})
    db().commit()
    flash(f"Modèle « {DOCUMENT_KINDS[kind]} » : version {version.version} vérifiée et "
          "enregistrée. Elle ne sera utilisée qu'une fois activée.", "success")
    return redirect(url_for("admin.templates_list", _anchor=kind))


@bp.route("/modeles/versions/<int:version_id>/activer", methods=["POST"])
@role_required("admin")
def template_activate(version_id: int):
    version = db().get(TemplateVersion, version_id) or abort(404)
    try:
        templates.activate(db(), vault(), version)
    except templates.TemplateRejectedError as exc:
        db().rollback()
        return _page({version.kind: [f"La version {version.version} ne peut plus être "
                                     f"activée. {exc.message}"]})
    db().commit()
    flash(f"Modèle « {DOCUMENT_KINDS.get(version.kind, version.kind)} » : la version "
          f"{version.version} est utilisée pour les prochains documents.", "success")
    return redirect(url_for("admin.templates_list", _anchor=version.kind))


@bp.route("/modeles/<kind>/revenir-au-modele-integre", methods=["POST"])
@role_required("admin")
def template_use_builtin(kind: str):
    _kind_or_404(kind)
    templates.deactivate_all(db(), vault(), kind)
    db().commit()
    flash(f"Modèle « {DOCUMENT_KINDS[kind]} » : le modèle intégré est utilisé pour les "
          "prochains documents.", "success")
    return redirect(url_for("admin.templates_list", _anchor=kind))


@bp.route("/modeles/versions/<int:version_id>/telecharger")
@role_required("admin")
def template_download(version_id: int):
    version = db().get(TemplateVersion, version_id) or abort(404)
    body = templates.download_version(vault(), version)
    db().commit()
    return send_file(io.BytesIO(body), mimetype=DOCX, as_attachment=True,
                     download_name=version.filename, max_age=0)


@bp.route("/modeles/<kind>/modele-integre")
@role_required("admin")
def template_builtin_download(kind: str):
    _kind_or_404(kind)
    try:
        name, body = templates.download_builtin(vault(), services().settings.templates_dir,
                                                kind)
    except NotFoundError:
        abort(404)
    db().commit()
    return send_file(io.BytesIO(body), mimetype=DOCX, as_attachment=True,
                     download_name=name, max_age=0)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_error):
    """A template over the limit: the templates page with the reason, for an administrator;
    the usual error page anywhere else in the admin area."""
    kind = (request.view_args or {}).get("kind")
    if (request.endpoint == "admin.template_upload" and kind in DOCUMENT_KINDS
            and current_user.is_authenticated and current_user.has_role("admin")
            and not current_user.must_change_password):
        return _page({kind: [TOO_LARGE]}, 413)
    return error_page(413, *MESSAGES[413])
