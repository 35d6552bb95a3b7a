"""Right of access: the referent downloads everything held about a person, in French."""

import io
import json
import zipfile

from docx import Document
from sqlalchemy import select

from shared.domain.sheets import read_values
from shared.models import AuditEvent
from tests.conftest import csrf_token
from tests.factories import canary_identity, make_sheet
from tests.intake.test_access import client_as


def test_the_referent_exports_identity_and_sheet_contents_audited(app, world, db_session,
                                                                   vault):
    identity = canary_identity(4)
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], identity,
                       author_id=world["users"]["referent"].id, status="soumise")
    db_session.commit()
    parcours = read_values(vault, sheet, purpose="test")["parcours"]
    db_session.rollback()
    client = client_as(app, "referent")
    token = csrf_token(client, f"/fiches/{sheet.id}")
    response = client.post(f"/fiches/{sheet.id}/droit-d-acces", data={"csrf_token": token})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert sorted(archive.namelist()) == ["donnees-personnelles.docx",
                                          "donnees-personnelles.json"]
    doc = Document(io.BytesIO(archive.read("donnees-personnelles.docx")))
    text = "\n".join([p.text for p in doc.paragraphs]
                     + [c.text for t in doc.tables for r in t.rows for c in r.cells])
    for value in (identity.nom, identity.prenom, identity.numero_caf, identity.email,
                  sheet.reference, sheet.beneficiary.pseudonym, parcours):
        assert value in text
    assert "Données vous concernant" in text
    data = json.loads(archive.read("donnees-personnelles.json"))
    assert data["identite"]["nom"] == identity.nom
    assert data["fiches"][0]["reference"] == sheet.reference
    db_session.expire_all()
    rows = db_session.scalars(select(AuditEvent).where(
        AuditEvent.purpose == "droit d'accès")).all()
    assert {r.action for r in rows} >= {"access_export", "decrypt"}
    decrypted = {r.object_type for r in rows if r.action == "decrypt"}
    assert {"identity_records", "sheets"} <= decrypted
    assert all(r.actor_id == world["users"]["referent"].id for r in rows)


def test_a_referent_of_another_structure_gets_nothing(app, world):
    sheet = world["sheets"][0]
    client = client_as(app, "other_referent")
    token = csrf_token(client, "/")
    response = client.post(f"/fiches/{sheet.id}/droit-d-acces", data={"csrf_token": token})
    assert response.status_code == 404
