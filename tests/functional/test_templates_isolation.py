"""The web process checks uploaded templates without loading the document engine: the check
is the generator's, run in a child process with limits (docs/architecture.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import select

from shared.domain import templates
from shared.models import TemplateVersion
from tests.factories import PASSWORD, second_factor_code
from tests.helpers import docx_with

# A web process of its own: the app, an administrator uploading a template that passes and one
# that does not, activating the first, then the list of modules it loaded.
WEB_PROCESS = r"""
import io, json, os, re, sys
from pathlib import Path

from intake import create_app
from shared.config import load_settings

email, password, code, template, unknown_variable = sys.argv[1:6]
app = create_app(load_settings(dict(os.environ)))
app.config["TESTING"] = True
client = app.test_client()


def token(url):
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def upload(data, name):
    return client.post("/admin/modeles/agenda/envoyer", content_type="multipart/form-data",
                       data={"csrf_token": token("/admin/modeles"),
                             "file": (io.BytesIO(data), name)})


seen = {}
client.post("/connexion", data={"csrf_token": token("/connexion"), "email": email,
                                "password": password})
login = client.post("/connexion/code", data={"csrf_token": token("/connexion/code"),
                                             "code": code})  # an administrator's second factor
seen["login"] = login.status_code
page = client.get("/admin/modeles").get_data(as_text=True)
seen["variables listed"] = "Variables disponibles pour ce document" in page and \
    "<code>situations</code>" in page
seen["accepted"] = upload(Path(template).read_bytes(), "odj.docx").status_code
refused = upload(Path(unknown_variable).read_bytes(), "inconnue.docx").get_data(as_text=True)
seen["refused"] = "Le modèle n'a pas été enregistré" in refused and "nom_du_beneficiaire" in refused
version_id = re.search(r"/admin/modeles/versions/(\d+)/activer", client.get(
    "/admin/modeles").get_data(as_text=True)).group(1)
seen["activated"] = client.post(f"/admin/modeles/versions/{version_id}/activer",
                                data={"csrf_token": token("/admin/modeles")}).status_code
seen["modules"] = sorted(m for m in sys.modules
                         if m.split(".")[0] in ("docxtpl", "generator", "docxcompose"))
print(json.dumps(seen))
"""


def test_the_web_process_checks_templates_without_importing_docxtpl_or_the_generator(
        test_env, world, db_session, settings, tmp_path):
    builtin = settings.templates_dir / "ordre_du_jour.docx"
    unknown_variable = tmp_path / "inconnue.docx"
    unknown_variable.write_bytes(docx_with("{{ circonscription }}",
                                           "Bénéficiaire : {{ nom_du_beneficiaire }}"))
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, "admin@test.invalid", PASSWORD,
         second_factor_code("admin@test.invalid"), str(builtin), str(unknown_variable)],
        env={**os.environ, **test_env}, capture_output=True, text=True, timeout=300,
        check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"login": 302, "variables listed": True, "accepted": 302,
                    "refused": True, "activated": 302, "modules": []}
    version = db_session.scalars(select(TemplateVersion)).one()  # checked, stored, active
    assert version.active and version.body == builtin.read_bytes()


def test_the_check_runs_in_a_child_without_the_application_settings(monkeypatch):
    monkeypatch.setenv("ICLI_SECRET_KEY", "not-for-the-child")
    environment = templates._child_environment()
    assert not any(name.startswith("ICLI_") for name in environment)
    assert environment.get("PATH") == os.environ.get("PATH")


def test_a_checker_that_crashes_refuses_the_template_with_an_internal_error(
        settings, monkeypatch, caplog):
    monkeypatch.setattr(templates, "CHECKER", "generator.no_such_module")
    body = (settings.templates_dir / "ordre_du_jour.docx").read_bytes()
    try:
        templates.check_template("agenda", body)
    except templates.TemplateRejectedError as refused:
        assert refused.code == "checker" and "erreur interne" in refused.message
        assert refused.message.count("Modèle refusé") == 1
    else:
        raise AssertionError("a template the check could not judge was accepted")
    assert "no_such_module" in caplog.text
