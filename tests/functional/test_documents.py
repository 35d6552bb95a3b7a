"""Every document kind through the forms and a real worker process, opened with python-docx."""

import html
import io
import shutil
from datetime import date, datetime, time

import pytest
from docx import Document
from sqlalchemy import select

from shared.models import GeneratedDocument, Meeting
from tests.factories import canary_values
from tests.helpers import (
    csrf_token,
    docx_xml,
    examine_every_situation,
    flash_text,
    generate,
    logged_in,
    pdf_text,
    step,
)


def test_every_document_is_built_by_the_worker_pseudonymised(
        app, world, db_session, vault, worker_process):
    meeting = world["meeting"]
    meeting.starts_at = datetime.combine(date.today(), time(9, 0))  # held today
    db_session.commit()
    facilitator = logged_in(app, "facilitator@test.invalid")
    references = [s.reference for s in world["sheets"]]
    pseudonyms = [s.beneficiary.pseudonym for s in world["sheets"]]
    canaries = [v for identity in world["identities"] for v in canary_values(identity)]

    built = {"agenda": generate(facilitator, meeting.id, "agenda"),
             "dossier": generate(facilitator, meeting.id, "dossier")}
    step(facilitator, meeting.id, "convene")
    built["attendance"] = generate(facilitator, meeting.id, "attendance")

    meeting = db_session.get(Meeting, meeting.id)
    db_session.refresh(meeting)
    examine_every_situation(db_session, vault, meeting)
    step(facilitator, meeting.id, "finish_avis")
    built["minutes"] = generate(facilitator, meeting.id, "minutes")
    built["feedback"] = generate(facilitator, meeting.id, "feedback", world["sheets"][0].id)

    for kind, data in built.items():
        Document(io.BytesIO(data))  # a .docx Word opens
        xml = docx_xml(data)
        assert not [v for v in canaries if v in xml], kind
        assert "L.262-44" in xml, kind
    for kind in ("agenda", "dossier"):
        assert all(r in docx_xml(built[kind]) for r in references + pseudonyms), kind
    assert all(r in docx_xml(built["minutes"]) for r in references)
    assert not any(p in docx_xml(built["minutes"]) for p in pseudonyms)  # by reference only
    assert not any(r in docx_xml(built["attendance"]) for r in references + pseudonyms)
    feedback = docx_xml(built["feedback"])
    assert references[0] in feedback and pseudonyms[0] in feedback
    assert references[1] not in feedback and "Atelier CV" in feedback

    stored = db_session.scalars(select(GeneratedDocument)).all()
    assert {d.kind for d in stored} == set(built)
    assert all(not d.body.startswith(b"PK") for d in stored)  # encrypted at rest
    if shutil.which("soffice") and shutil.which("pdftotext"):  # .ci/run installs both
        for document in stored:
            assert document.pdf_body is not None, document.kind
            text = pdf_text(vault.open_blob(document, "pdf_body"))
            assert "L.262-44" in text and not [v for v in canaries if v in text], document.kind

    # The referent finds the fiche retour on the sheet page, beside the identity.
    referent_user = world["users"]["referent"]
    referent_user.roles[0].is_manager = True  # sees every sheet of the structure
    db_session.commit()
    referent = logged_in(app, "referent@test.invalid")
    page = referent.get(f"/fiches/{world['sheets'][0].id}").get_data(as_text=True)
    assert "Fiches retour" in page and world["identities"][0].nom in page
    link = page.split("/documents/")[1].split('"')[0]
    fiche = referent.get(f"/fiches/{world['sheets'][0].id}/documents/{link}")
    assert fiche.status_code == 200 and docx_xml(fiche.data) == feedback

    # The session archive: dossier, minutes, decisions by reference only.
    import zipfile

    archive = facilitator.get(f"/seances/{meeting.id}/archive")
    with zipfile.ZipFile(io.BytesIO(archive.data)) as bundle:
        names = bundle.namelist()
        decisions = bundle.read("decisions.csv").decode("utf-8-sig")
    assert any(n.startswith("dossier-de-seance") for n in names)
    assert any(n.startswith("proces-verbal") for n in names)
    assert all(r in decisions for r in references)
    assert not any(p in decisions for p in pseudonyms + canaries)


def test_the_dossier_is_refused_while_a_text_names_someone(app, world, db_session, vault):
    from shared import deidentify
    from shared.domain.sheets import read_values, write_values
    from shared.models import DocumentJob

    # Given an inscribed sheet whose text was changed after its review to name a doctor
    meeting, sheet = world["meeting"], world["sheets"][1]
    values = read_values(vault, sheet, purpose="test")
    write_values(vault, sheet, {**values, "question": "Le Dr Lambert soutient la demande."})
    db_session.commit()
    facilitator = logged_in(app, "facilitator@test.invalid")
    url = f"/seances/{meeting.id}"

    def request_dossier():
        return facilitator.post(f"{url}/documents/dossier", follow_redirects=True,
                                data={"csrf_token": csrf_token(facilitator, url)})

    # The dossier is refused, naming that sheet only, and nothing is queued
    message = flash_text(request_dossier())
    assert "éléments identifiants non traités" in message
    assert sheet.reference in message and world["sheets"][0].reference not in message
    assert "Lambert" not in message
    db_session.expire_all()
    assert db_session.scalar(select(DocumentJob.id)
                             .where(DocumentJob.meeting_id == meeting.id)) is None
    assert db_session.get(type(sheet), sheet.id).open_findings == 1  # kept for the next try

    # Once the referent judged the name not identifying, the dossier is queued
    values = read_values(vault, sheet, purpose="test")
    (finding,) = deidentify.unhandled_high_confidence(values)
    write_values(vault, sheet, deidentify.dismiss(values, finding.key))
    db_session.commit()
    assert "génération demandée" in flash_text(request_dossier())
    assert db_session.scalar(select(DocumentJob.kind)
                             .where(DocumentJob.meeting_id == meeting.id)) == "dossier"


def test_the_page_says_pdf_is_unavailable_as_long_as_no_live_worker_converts(
        app, world, db_session):
    from datetime import timedelta

    from shared import heartbeat
    from shared.db import utcnow

    facilitator = logged_in(app, "facilitator@test.invalid")
    url = f"/seances/{world['meeting'].id}"
    note = "Aucun générateur de documents en service ne convertit en PDF"

    def page() -> str:
        return html.unescape(facilitator.get(url).get_data(as_text=True))

    assert note in page()  # no worker at all
    held = {"content": [1]}
    heartbeat.record(db_session, "web-1", "intake", held)
    heartbeat.record(db_session, "worker-docx", "worker", held, converts_pdf=False)
    heartbeat.record(db_session, "worker-gone", "worker", held, converts_pdf=True,
                     now=utcnow() - heartbeat.LIVE_FOR - timedelta(seconds=5))
    db_session.commit()
    assert note in page()  # the web host's own LibreOffice says nothing about the worker's
    heartbeat.record(db_session, "worker-pdf", "worker", held, converts_pdf=True)
    db_session.commit()
    assert note not in page()

    # A version whose conversion failed says so, and how to get the PDF.
    from shared.domain import documents

    job = documents.request_document(db_session, world["meeting"], "agenda", None)
    built = GeneratedDocument(meeting_id=job.meeting_id, kind="agenda", content_version=1,
                              filename="odj.docx", media_type="application/octet-stream",
                              size=4, body=b"", pdf_size=None)
    db_session.add(built)
    db_session.flush()
    job.status, job.document_id = "done", built.id
    db_session.commit()
    assert "pas de PDF pour cette version (conversion échouée)" in page()


@pytest.mark.skipif(not shutil.which("soffice"), reason="LibreOffice is installed by .ci/run")
def test_a_worker_with_libreoffice_says_so_and_the_page_offers_pdf(app, world, worker_process):
    facilitator = logged_in(app, "facilitator@test.invalid")
    generate(facilitator, world["meeting"].id, "agenda")
    page = html.unescape(facilitator.get(f"/seances/{world['meeting'].id}").get_data(
        as_text=True))
    assert "ne convertit en PDF" not in page and "format=pdf" in page
