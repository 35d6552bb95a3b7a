"""Administrators import circonscriptions, structures, accounts and members from a CSV
file: a dry run first, then the import itself (all or nothing)."""

from __future__ import annotations

from flask import render_template

from intake.access import role_required
from intake.admin.forms import ImportForm
from intake.admin.views import bp
from intake.choices import choices
from intake.dbsession import db, vault
from shared.domain import account_import
from shared.domain.account_import import COLUMNS, KINDS


@bp.route("/import", methods=["GET", "POST"])
@role_required("admin")
def import_csv():
    form = ImportForm()
    form.kind.choices = choices(KINDS.items())
    report = None
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.read() if upload else b""
        report = account_import.import_csv(db(), vault(), form.kind.data, data,
                                           dry_run=not form.apply.data)
        if report.applied:
            db().commit()
        else:
            db().rollback()
    return render_template("admin/import.html", form=form, report=report, kinds=KINDS,
                           columns=COLUMNS)
