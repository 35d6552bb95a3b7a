"""The session's archive: every document in its approved version, and the decisions CSV with
adjourned situations and every préconisation."""

import csv
import io
import zipfile
from datetime import date

from shared.domain import documents
from shared.domain.meetings import ActionInput, adjourn, record_avis
from shared.domain.reference import reference_labels
from shared.models import GeneratedDocument, MinutesVisa


def stored(db_session, vault, meeting, kind, number, sheet=None) -> GeneratedDocument:
    document = GeneratedDocument(
        meeting_id=meeting.id, kind=kind, content_version=number, number=number,
        sheet_id=sheet.id if sheet else None, media_type="x", size=1, body=b"",
        filename=f"{kind}{'-' + sheet.reference if sheet else ''}-v{number}.docx")
    db_session.add(document)
    db_session.flush()
    vault.seal_blob(document, "body", f"{kind} v{number}".encode())
    return document


def test_the_archive_holds_every_document_approved_and_every_decision(world, db_session,
                                                                     vault):
    meeting, (decided, adjourned) = world["meeting"], world["sheets"][:2]
    meeting.state = "tenue"
    items = {i.sheet_id: i for i in meeting.items if i.sheet_id}
    record_avis(db_session, vault, meeting, items[decided.id].id, avis="maintien",
                avis_codes=set(reference_labels(db_session)["avis"]),
                motivation="Poursuivre.", come_back_on=None, formal_decision_by="",
                actions=[ActionInput("Atelier CV", world["structures"]["ali"].id,
                                     date(2027, 3, 15)),
                         ActionInput("Bilan de compétences", None, None)])
    adjourn(db_session, vault, meeting, items[adjourned.id].id, "Référent·e absent·e.")
    for kind in ("agenda", "dossier", "attendance"):
        stored(db_session, vault, meeting, kind, 1)
    approved = stored(db_session, vault, meeting, "minutes", 1)
    final = stored(db_session, vault, meeting, "minutes", 2)
    for institution, user in (("departement", "director"),
                              ("france_travail", "other_director")):
        db_session.add(MinutesVisa(meeting_id=meeting.id, document_id=approved.id,
                                   institution=institution, sha256="a" * 64,
                                   user_id=world["users"][user].id))
    fiches = [stored(db_session, vault, meeting, "feedback", 1, sheet)
              for sheet in (decided, adjourned)]
    meeting.state = "pv_signe"
    db_session.flush()

    with zipfile.ZipFile(io.BytesIO(documents.meeting_archive(db_session, vault,
                                                              meeting))) as bundle:
        names = set(bundle.namelist())
        rows = list(csv.reader(io.StringIO(bundle.read("decisions.csv").decode("utf-8-sig")),
                               delimiter=";"))
        assert bundle.read(approved.filename) == b"minutes v1"
    assert names == {"agenda-v1.docx", "dossier-v1.docx", "attendance-v1.docx",
                     approved.filename, final.filename, *(f.filename for f in fiches),
                     "decisions.csv"}
    header, *lines = rows
    assert header == documents.DECISION_COLUMNS
    table = [dict(zip(header, line, strict=True)) for line in lines]
    assert [(r["Référence"], r["Issue"], r["Préconisation"], r["Porteur"], r["Échéance"])
            for r in table] == [
        (decided.reference, "Examinée", "Atelier CV", "ALI de Saint-Denis", "15/03/2027"),
        (decided.reference, "Examinée", "Bilan de compétences", "", ""),
        (adjourned.reference, "Ajournée", "", "", "")]
    assert table[2]["Motif de l'ajournement"] == "Référent·e absent·e."
    assert not any(s.beneficiary.pseudonym in ";".join(line) for line in lines
                   for s in (decided, adjourned))
