"""The administrator's CSV import page: a dry run, then the import (issue 21)."""

import io

from sqlalchemy import func, select

from shared.models import Structure
from tests.helpers import client_as, csrf_token, icli

STRUCTURES = (b"nom;type;circonscription\n"
              b"ALI de Bondy;ali;C01\n"
              b"CCAS de Pantin;service_social_municipal;C02\n")


def _send(client, data: bytes, button: str):
    token = csrf_token(client, "/admin/import")
    return client.post("/admin/import", data={
        "csrf_token": token, "kind": "structures", button: "1",
        "file": (io.BytesIO(data), "structures.csv")}, content_type="multipart/form-data")


def _structures(db_session) -> int:
    db_session.expire_all()
    return db_session.scalar(select(func.count()).select_from(Structure))


def test_the_page_checks_then_imports_then_finds_nothing_to_change(app, world, db_session):
    admin, before = client_as(app, "admin"), _structures(db_session)
    body = _send(admin, STRUCTURES, "dry_run").get_data(as_text=True)
    assert "Vérification : rien n'a été enregistré" in body
    assert "2 ligne(s) lue(s) : 2 à créer ou modifier" in body
    assert _structures(db_session) == before
    body = _send(admin, STRUCTURES, "apply").get_data(as_text=True)
    assert "Import effectué" in body and _structures(db_session) == before + 2
    body = _send(admin, STRUCTURES, "apply").get_data(as_text=True)  # the same file again
    assert "2 ligne(s) lue(s) : 0 à créer ou modifier, 2 inchangée(s)" in body
    assert _structures(db_session) == before + 2


def test_errors_are_listed_with_their_lines_and_nothing_is_saved(app, world, db_session):
    admin, before = client_as(app, "admin"), _structures(db_session)
    hostile = STRUCTURES + b"=HYPERLINK(\"https://evil.invalid\");ali;C01\nX;inconnu;C01\n"
    body = _send(admin, hostile, "apply").get_data(as_text=True)
    assert "2 erreur(s) : rien n'a été enregistré" in body
    assert "Ligne 4 : colonne « nom »" in body and "Ligne 5 : colonne « type »" in body
    assert "evil.invalid" not in body  # values are never quoted back
    assert _structures(db_session) == before


def test_the_import_form_needs_its_csrf_token(app, world, db_session):
    admin, before = client_as(app, "admin"), _structures(db_session)
    response = admin.post("/admin/import", data={
        "kind": "structures", "apply": "1", "file": (io.BytesIO(STRUCTURES), "s.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 400 and _structures(db_session) == before


def test_icli_users_import_makes_the_same_import(test_env, world, db_session, tmp_path):
    path = tmp_path / "structures.csv"
    path.write_bytes(STRUCTURES)
    before = _structures(db_session)
    dry = icli(test_env, "users", "import", "structures", str(path))
    assert "line 2: création ALI de Bondy" in dry.stdout and _structures(db_session) == before
    icli(test_env, "users", "import", "structures", str(path), "--apply")
    assert _structures(db_session) == before + 2
    path.write_bytes(STRUCTURES + b"X;inconnu;C01\n")
    refused = icli(test_env, "users", "import", "structures", str(path), "--apply", check=False)
    assert refused.returncode == 1 and "Ligne 4 : colonne « type »" in refused.stderr
