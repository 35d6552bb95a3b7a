"""Hostile Word templates (issue 16, item 5): the package is parsed, not searched with regular
expressions; the upload, the test render and every document the worker renders are checked."""

from __future__ import annotations

import hashlib
import html
import io
import struct
import zipfile

import pytest
from sqlalchemy import select

from generator.render import RenderError, render
from shared.docx_safety import MAX_UNCOMPRESSED, UnsafeDocxError, check_docx
from shared.domain.templates import TemplateRejectedError, check_template
from shared.models import AuditEvent, DocumentJob, GeneratedDocument, TemplateVersion
from tests.factories import PASSWORD
from tests.helpers import client_as, count, request_agenda, run_queue, upload, zip_with

LINKED = b'"http://collecte.invalid/p.png"'


def in_body(xml: bytes) -> callable:
    """A transform adding ``xml`` as the last paragraph of the document body."""
    return lambda document: document.replace(b"<w:sectPr", b"<w:p>" + xml + b"</w:p><w:sectPr",
                                             1)


def run(content: bytes) -> bytes:
    return b"<w:r>" + content + b"</w:r>"


def field(*instructions: bytes) -> bytes:
    """A complex field whose instruction is split over one run per piece."""
    return (run(b'<w:fldChar w:fldCharType="begin"/>')
            + b"".join(run(b'<w:instrText xml:space="preserve">' + piece + b"</w:instrText>")
                       for piece in instructions)
            + run(b'<w:fldChar w:fldCharType="separate"/>') + run(b"<w:t>image</w:t>")
            + run(b'<w:fldChar w:fldCharType="end"/>'))


def external_relationship(attribute: bytes) -> callable:
    return lambda rels: rels.replace(b"</Relationships>", b'<Relationship Id="rX" Type="http://'
                                     b'schemas.openxmlformats.org/officeDocument/2006/'
                                     b'relationships/image" Target="http://collecte.invalid/'
                                     b'p.png" ' + attribute + b"/></Relationships>")


DOCUMENT, RELS = "word/document.xml", "word/_rels/document.xml.rels"


@pytest.mark.parametrize(("case", "name", "transform", "reason"), [
    ("TargetMode with spaces", RELS, external_relationship(b'TargetMode = "External"'),
     "cible externe"),
    ("TargetMode in single quotes", RELS, external_relationship(b"TargetMode='External'"),
     "cible externe"),
    ("TargetMode in another case", RELS, external_relationship(b'TargetMode="external"'),
     "cible externe"),
    ("lower-case includepicture", DOCUMENT, in_body(field(b"includepicture " + LINKED)),
     "champ de liaison interdit"),
    ("lower-case hyperlink", DOCUMENT,
     in_body(b'<w:fldSimple w:instr="hyperlink &quot;http://collecte.invalid&quot;">'
             + run(b"<w:t>lien</w:t>") + b"</w:fldSimple>"), "champ de liaison interdit"),
    ("field name split over two runs", DOCUMENT,
     in_body(field(b"INCLUDE", b"PICTURE " + LINKED)), "champ de liaison interdit"),
    ("w:fldsimple in lower case", DOCUMENT,
     in_body(b'<w:fldsimple w:instr="INCLUDEPICTURE &quot;http://collecte.invalid&quot;">'
             + run(b"<w:t>x</w:t>") + b"</w:fldsimple>"), "champ de liaison interdit"),
    ("a field nested in an instruction", DOCUMENT,
     in_body(run(b'<w:fldChar w:fldCharType="begin"/>')
             + run(b"<w:instrText>INCLUDE</w:instrText>") + field(b'QUOTE "PICTURE"')
             + run(b'<w:fldChar w:fldCharType="end"/>')), "champ Word imbriqué"),
    ("a template tag in a field instruction", DOCUMENT,
     in_body(field(b"{{ circonscription }}")), "balise de modèle dans le code d'un champ"),
    ("autoescape off", DOCUMENT,
     in_body(run(b"<w:t>{% autoescape false %}{{ circonscription }}{% endautoescape %}</w:t>")),
     "désactive l'échappement"),
    ("autoescape off split over runs", DOCUMENT,
     in_body(run(b"<w:t>{% auto</w:t>") + run(b"<w:t>escape False %}{{ circonscription }}"
                                              b"{% endautoescape %}</w:t>")),
     "désactive l'échappement"),
    ("filter block safe", DOCUMENT,
     in_body(run(b"<w:t>{% filter safe %}{{ circonscription }}{% endfilter %}</w:t>")),
     "désactive l'échappement"),
    ("linked VML image", DOCUMENT,
     in_body(run(b'<w:pict><v:shape><v:imagedata o:href="http://collecte.invalid/p.png"/>'
                 b"</v:shape></w:pict>")), "adresse externe interdite"),
    ("internal DTD with an entity", DOCUMENT,
     lambda xml: xml.replace(b"?>", b'?><!DOCTYPE w:document [<!ENTITY x "y">]>', 1),
     "DTD ou entité XML interdite"),
])
def test_each_known_bypass_of_the_template_check_is_refused(settings, case, name, transform,
                                                            reason):
    builtin = (settings.templates_dir / "ordre_du_jour.docx").read_bytes()
    with pytest.raises(TemplateRejectedError, match=reason):
        check_template("agenda", zip_with(builtin, name, transform))


def lying_size_header(source: bytes, name: str, stated: int) -> bytes:
    """``source`` with the uncompressed size of ``name`` stated as ``stated`` bytes in both
    headers, its data unchanged: a reader that trusts the header is fooled."""
    data = bytearray(source)
    with zipfile.ZipFile(io.BytesIO(source)) as archive:
        info = archive.getinfo(name)
    data[info.header_offset + 22:info.header_offset + 26] = struct.pack("<I", stated)
    central = data.find(b"PK\x01\x02")  # the central directory's entries
    while central != -1:
        length = struct.unpack("<H", data[central + 28:central + 30])[0]
        if bytes(data[central + 46:central + 46 + length]) == name.encode():
            data[central + 24:central + 28] = struct.pack("<I", stated)
            break
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def bomb(settings) -> bytes:
    """The built-in template plus a highly compressible part stated as 100 bytes."""
    builtin = (settings.templates_dir / "ordre_du_jour.docx").read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(builtin)) as original, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as patched:
        for item in original.infolist():
            patched.writestr(item, original.read(item.filename))
        patched.writestr("word/media/image9.png", b"\0" * (MAX_UNCOMPRESSED + 1024))
    return lying_size_header(out.getvalue(), "word/media/image9.png", 100)


def test_a_zip_with_a_lying_size_header_is_refused_cleanly_and_audited(
        client, auth, world, db_session, settings):
    data = bomb(settings)
    assert len(data) < 2 * 1024 * 1024  # under the upload limit: the check sees it
    with pytest.raises(UnsafeDocxError, match="archive corrompue ou tailles annoncées fausses"):
        check_docx(data, template=True)

    auth.login("admin@test.invalid", PASSWORD)
    response = upload(client, "agenda", data, "bombe.docx")
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200
    assert "Le modèle n'a pas été enregistré" in body and "tailles annoncées fausses" in body
    assert count(db_session, TemplateVersion) == 0
    rejected = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "template_rejected")).one()
    assert rejected.purpose == "agenda : not_docx"


def test_a_rendered_value_that_would_become_a_live_field_is_never_stored_or_sent(
        app, world, db_session, settings, redis):
    # Given an active template stored before this check, with a tag inside a field code,
    builtin = (settings.templates_dir / "ordre_du_jour.docx").read_bytes()
    hostile = zip_with(builtin, DOCUMENT, in_body(field(b"{{ circonscription }}")))
    db_session.add(TemplateVersion(kind="agenda", version=1, filename="ancien.docx",
                                   sha256=hashlib.sha256(hostile).hexdigest(),
                                   size=len(hostile), body=hostile, active=True))
    # and a value that reads as a linking field
    world["meeting"].circonscription.name = 'INCLUDEPICTURE "http://collecte.invalid/x.png"'
    db_session.commit()

    # When a facilitator asks for the agenda and the worker renders it
    facilitator = client_as(app, "facilitator")
    assert request_agenda(facilitator, world["meeting"].id).status_code == 302
    run_queue(settings, redis)

    # Then the job fails on the template and no document exists
    db_session.expire_all()
    job = db_session.scalars(select(DocumentJob)).one()
    assert job.status == "failed" and job.error_code == "template"
    assert "document produit refusé" in job.error_message
    assert "collecte.invalid" not in job.error_message
    assert count(db_session, GeneratedDocument) == 0


def test_the_worker_refuses_a_rendered_document_with_an_external_link(settings):
    builtin = (settings.templates_dir / "ordre_du_jour.docx").read_bytes()
    hostile = zip_with(builtin, RELS, external_relationship(b'TargetMode="External"'))
    from generator.contexts import sample_context

    with pytest.raises(RenderError, match="document produit refusé"):
        render(hostile, sample_context("agenda"), "ordre_du_jour.docx")
    render(builtin, sample_context("agenda"), "ordre_du_jour.docx")  # the built-in one renders


def test_parts_found_safe_are_remembered_but_a_changed_part_or_use_is_checked_again(settings):
    """check_docx skips parts it found safe lately (a render keeps most of its template's
    parts): a part that changed, or the same part now checked as a template, is not skipped."""
    builtin = (settings.templates_dir / "ordre_du_jour.docx").read_bytes()
    check_docx(builtin, template=True)
    check_docx(builtin, template=True)
    linked = zip_with(builtin, DOCUMENT, in_body(run(
        b'<w:pict><v:shape><v:imagedata o:href="http://collecte.invalid/p.png"/></v:shape>'
        b"</w:pict>")))
    with pytest.raises(UnsafeDocxError, match="adresse externe interdite"):
        check_docx(linked, template=True)
    tagged = zip_with(builtin, DOCUMENT, in_body(field(b"{{ circonscription }}")))
    check_docx(tagged, template=False)  # a rendered document may show braces in a field
    with pytest.raises(UnsafeDocxError, match="balise de modèle"):
        check_docx(tagged, template=True)
