"""Administrators manage the Word templates: upload through the real form, checks with French
reasons, versions, activation used by the worker, back to the built-in template, access."""

import hashlib
import html
import io
import re
import zipfile

import pytest
from docx import Document
from sqlalchemy import select

from generator.jobs import template_source
from generator.render import TEMPLATES, template_path
from shared.domain.templates import MAX_SIZE, TemplateRejectedError, check_template
from shared.models import AuditEvent, GeneratedDocument, TemplateVersion
from tests.factories import PASSWORD
from tests.helpers import (
    TEMPLATES_PAGE,
    client_as,
    count,
    csrf_token,
    docx_with,
    request_agenda,
    run_queue,
    upload,
    zip_with,
)

PAGE = TEMPLATES_PAGE


def post(client, url: str):
    return client.post(url, data={"csrf_token": csrf_token(client, PAGE)})


def zip_of(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def audit_actions(session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_builtin_template_uploaded_activated_used_by_the_worker_then_back_to_builtin(
        app, client, auth, world, db_session, settings, redis):
    auth.login("admin@test.invalid", PASSWORD)
    page = client.get(PAGE).get_data(as_text=True)
    assert "Modèles de documents" in page and "2 Mo au plus" in page
    assert TEMPLATES["agenda"] in page  # the built-in file is listed

    builtin = template_path(settings.templates_dir, "agenda")
    body = builtin.read_bytes()
    response = upload(client, "agenda", body, TEMPLATES["agenda"])
    assert response.status_code == 302
    assert "version 1 vérifiée et enregistrée" in client.get(PAGE).get_data(as_text=True)
    first = db_session.scalars(select(TemplateVersion)).one()
    assert (first.kind, first.version, first.active) == ("agenda", 1, False)
    assert first.sha256 == hashlib.sha256(body).hexdigest() and first.size == len(body)
    assert first.uploaded_by == world["users"]["admin"].id
    assert template_source(db_session, settings, "agenda") == (None, builtin)  # not active yet

    # Downloads: the uploaded version and the built-in file, as they are.
    download = client.get(f"{PAGE}/versions/{first.id}/telecharger")
    assert download.status_code == 200 and download.data == body
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert client.get(f"{PAGE}/agenda/modele-integre").data == body

    assert post(client, f"{PAGE}/versions/{first.id}/activer").status_code == 302
    db_session.expire_all()
    assert template_source(db_session, settings, "agenda") == (first.id, body)

    # A second version: activating it deactivates the first (one active per kind).
    marker = "Modèle d'essai, version 2"
    second_body = zip_with(body, "word/document.xml", lambda xml: xml.replace(
        b"<w:sectPr", f"<w:p><w:r><w:t>{marker}</w:t></w:r></w:p><w:sectPr".encode(), 1))
    assert upload(client, "agenda", second_body, "odj-v2.docx").status_code == 302
    second = db_session.scalar(select(TemplateVersion).where(TemplateVersion.version == 2))
    post(client, f"{PAGE}/versions/{second.id}/activer")
    db_session.expire_all()
    assert [v.active for v in db_session.scalars(
        select(TemplateVersion).order_by(TemplateVersion.version))] == [False, True]
    page = client.get(PAGE).get_data(as_text=True)
    assert "odj-v2.docx" in page and second.sha256[:12] in page and "Test admin" in page

    # The worker fills the active version and records which one it used.
    facilitator = client_as(app, "facilitator")
    assert request_agenda(facilitator, world["meeting"].id).status_code == 302
    run_queue(settings, redis)
    document = db_session.scalars(select(GeneratedDocument)).one()
    assert document.template_version_id == second.id
    status = facilitator.get(f"/seances/{world['meeting'].id}/documents/agenda/statut").get_json()
    produced = Document(io.BytesIO(facilitator.get(status["download"]).data))
    text = "\n".join([p.text for p in produced.paragraphs]
                     + [c.text for t in produced.tables for r in t.rows for c in r.cells])
    assert marker in text and world["sheets"][0].reference in text

    assert post(client, f"{PAGE}/agenda/revenir-au-modele-integre").status_code == 302
    db_session.expire_all()
    assert not any(db_session.scalars(select(TemplateVersion.active)))
    assert template_source(db_session, settings, "agenda") == (None, builtin)
    assert count(db_session, TemplateVersion) == 2  # versions are kept
    actions = audit_actions(db_session)
    for action in ("template_uploaded", "template_activated", "template_downloaded",
                   "template_deactivated"):
        assert action in actions


MACRO_DOCM = zip_of({
    "[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.'
                           b'org/package/2006/content-types"><Override PartName="/word/'
                           b'document.xml" ContentType="application/vnd.ms-word.document.'
                           b'macroEnabled.main+xml"/></Types>',
    "word/document.xml": b"<w:document/>",
})


@pytest.mark.parametrize(("case", "make", "filename", "reasons"), [
    ("texte renommé", lambda: b"Ceci n'est pas un document Word.\n", "notes.docx",
     ["n'est pas un fichier Word .docx"]),
    ("syntaxe Jinja", lambda: docx_with("Ordre du jour", "{% for x in %}", "{% endfor %}"),
     "boucle.docx", ["erreur de syntaxe", "le corps du document, au paragraphe",
                     "« {% for x in %} »", "une expression est attendue"]),
    ("variable inconnue", lambda: docx_with("{{ circonscription }}",
                                            "Bénéficiaire : {{ nom_du_beneficiaire }}"),
     "variable.docx", ["variable inconnue", "« nom_du_beneficiaire »"]),
    ("macros (vbaProject.bin)", lambda: zip_of({"word/vbaProject.bin": b"\xd0\xcf\x11\xe0"}),
     "macro.docx", ["contient des macros", "word/vbaProject.bin"]),
    ("macros (type .docm)", lambda: MACRO_DOCM, "macro.docx", ["contient des macros"]),
    ("extension", lambda: docx_with("{{ circonscription }}"), "modele.docm",
     ["Seuls les fichiers Word .docx"]),
    ("accès interne", lambda: docx_with("{{ circonscription.__class__ }}"), "interne.docx",
     ["accès interdit", "__class__"]),
])
def test_rejected_uploads_show_the_french_reason_and_store_nothing(
        client, auth, world, db_session, case, make, filename, reasons):
    auth.login("admin@test.invalid", PASSWORD)
    response = upload(client, "agenda", make(), filename)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200, case
    assert "Le modèle n'a pas été enregistré" in body, case
    for reason in reasons:
        assert reason in body, (case, reason)
    assert count(db_session, TemplateVersion) == 0


def test_oversized_upload_is_refused_with_the_limit(client, auth, world, db_session):
    auth.login("admin@test.invalid", PASSWORD)
    # follow_redirects: the test client then closes the request's temporary file with it.
    with upload(client, "dossier", b"PK" + b"\0" * (2 * 1024 * 1024),
                follow_redirects=True) as response:
        body = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "dépasse 2 Mo" in body and 'id="fichier-dossier"' in body
    assert count(db_session, TemplateVersion) == 0
    # The domain applies the same limit to what reaches it by another way.
    with pytest.raises(TemplateRejectedError, match="dépasse 2 Mo"):
        check_template("dossier", b"PK" + b"\0" * MAX_SIZE)
    with pytest.raises(TemplateRejectedError, match="type de document inconnu"):
        check_template("convocation", docx_with("x"))


def test_a_version_that_no_longer_passes_is_not_activated(client, auth, world, db_session,
                                                         settings):
    auth.login("admin@test.invalid", PASSWORD)
    good = template_path(settings.templates_dir, "agenda").read_bytes()
    upload(client, "agenda", good)
    first = db_session.scalars(select(TemplateVersion)).one()
    post(client, f"{PAGE}/versions/{first.id}/activer")
    broken = docx_with("{{ ancienne_variable }}")  # e.g. stored before the builder changed
    stale = TemplateVersion(kind="agenda", version=2, filename="ancien.docx",
                            sha256=hashlib.sha256(broken).hexdigest(), size=len(broken),
                            body=broken)
    db_session.add(stale)
    db_session.commit()
    response = post(client, f"{PAGE}/versions/{stale.id}/activer")
    body = html.unescape(response.get_data(as_text=True))
    assert "ne peut plus être activée" in body and "ancienne_variable" in body
    db_session.expire_all()
    assert template_source(db_session, settings, "agenda")[0] == first.id  # previous stays
    assert "template_rejected" in audit_actions(db_session)


def test_uploading_the_same_file_twice_is_refused(client, auth, world, db_session, settings):
    auth.login("admin@test.invalid", PASSWORD)
    body = template_path(settings.templates_dir, "agenda").read_bytes()
    upload(client, "agenda", body)
    response = upload(client, "agenda", body)
    assert "identique à la version 1" in html.unescape(response.get_data(as_text=True))
    assert count(db_session, TemplateVersion) == 1


@pytest.mark.parametrize("role", ["referent", "facilitator", "director"])
def test_other_roles_are_refused(app, world, db_session, role):
    body = docx_with("{{ circonscription }}")
    version = TemplateVersion(kind="agenda", version=1, filename="v1.docx",
                              sha256=hashlib.sha256(body).hexdigest(), size=len(body), body=body)
    db_session.add(version)
    db_session.commit()
    client = client_as(app, role)
    assert client.get(PAGE).status_code == 403
    assert client.get(f"{PAGE}/versions/{version.id}/telecharger").status_code == 403
    assert client.get(f"{PAGE}/agenda/modele-integre").status_code == 403
    token = csrf_token(client, "/")
    for url in (f"{PAGE}/versions/{version.id}/activer",
                f"{PAGE}/agenda/revenir-au-modele-integre"):
        assert client.post(url, data={"csrf_token": token}).status_code == 403
    response = client.post(f"{PAGE}/agenda/envoyer", content_type="multipart/form-data",
                           data={"csrf_token": token, "file": (io.BytesIO(body), "m.docx")})
    assert response.status_code == 403
    assert f'href="{PAGE}"' not in client.get("/").get_data(as_text=True)
    db_session.expire_all()
    assert count(db_session, TemplateVersion) == 1 and not db_session.get(
        TemplateVersion, version.id).active
    anonymous = app.test_client()
    assert anonymous.get(PAGE).headers["Location"].startswith("/connexion")


@pytest.mark.parametrize(("name", "transform", "reason"), [
    ("word/document.xml", lambda xml: xml.replace(
        b"</w:body>", b'<w:p><w:r><w:instrText>INCLUDEPICTURE "http://x/{{ reference }}"'
                      b"</w:instrText></w:r></w:p></w:body>"), "champ de liaison interdit"),
    ("word/_rels/document.xml.rels", lambda xml: xml.replace(
        b"</Relationships>", b'<Relationship Id="rX" Type="http://schemas.openxmlformats.org/'
                             b'officeDocument/2006/relationships/image" Target="http://x/p.png"'
                             b' TargetMode="External"/></Relationships>'), "cible externe"),
    ("word/document.xml", lambda xml: xml.replace(b"{{ circonscription }}",
                                                  b"{{ circonscription|safe }}"), "safe"),
])
def test_templates_that_would_send_data_elsewhere_are_refused(settings, name, transform,
                                                              reason):
    from shared.domain.templates import TemplateRejectedError, check_template

    builtin = (settings.templates_dir / "ordre_du_jour.docx").read_bytes()
    with pytest.raises(TemplateRejectedError, match=reason):
        check_template("agenda", zip_with(builtin, name, transform))
    check_template("agenda", builtin)  # the built-in one passes


@pytest.mark.parametrize(("jinja", "reason"), [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "temps autorisé"),
    ("{% for i in range(3000) %}{{ circonscription * 100000 }}{% endfor %}", "rendu d'essai"),
    ("{{ 9 ** 9 ** 9 }}", "rendu d'essai"),
])
def test_a_template_that_would_hang_or_exhaust_memory_is_refused(settings, jinja, reason,
                                                                  monkeypatch):
    from docx import Document as NewDocument

    from shared.domain import templates

    monkeypatch.setattr(templates, "TRIAL_TIMEOUT", 5)
    document = NewDocument()
    document.add_paragraph("{{ circonscription }} " + jinja)
    out = io.BytesIO()
    document.save(out)
    with pytest.raises(TemplateRejectedError, match=reason):
        check_template("feedback", out.getvalue())


def _without_drawings(xml: bytes) -> bytes:
    return re.sub(rb"<w:drawing>.*?</w:drawing>", b"", xml, flags=re.DOTALL)


@pytest.mark.parametrize(("name", "transform", "reason"), [
    ("word/header1.xml", lambda xml: xml.replace(b"L.262-44", b"L.000-00"),
     "la mention « Document confidentiel – secret professionnel (art. L.262-44 CASF) »"),
    ("word/footer1.xml", lambda xml: xml.replace(b"{{ version }}", b"1"),
     "la date et la version du document"),
    ("word/footer1.xml", lambda xml: xml.replace(b"NUMPAGES", b""),
     "la pagination « page x / y »"),
    ("word/header1.xml", _without_drawings, "les logos"),
])
def test_a_template_without_what_every_document_carries_is_refused(settings, name, transform,
                                                                    reason):
    builtin = (settings.templates_dir / "ordre_du_jour.docx").read_bytes()
    with pytest.raises(TemplateRejectedError) as refused:
        check_template("agenda", zip_with(builtin, name, transform))
    assert refused.value.code == "mandatory"
    assert reason in refused.value.message and "Télécharger" in refused.value.message
    # Every built-in template carries them all: tests/generator/test_template_check.py
