"""Right of access: the referent downloads everything held about a person, in French."""

import io
import json
import zipfile
from datetime import date

import pytest
from docx import Document
from sqlalchemy import select

from shared.domain import avis, decisions
from shared.domain.screening import TextsNeedReviewError
from shared.domain.sheets import read_values
from shared.models import AuditEvent
from tests.factories import canary_identity, make_sheet
from tests.helpers import DGA, client_as, csrf_token


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


def exported(app, sheet) -> tuple[dict, str]:
    """The JSON data and the Word document's text of the sheet's right-of-access export."""
    client = client_as(app, "referent")
    token = csrf_token(client, f"/fiches/{sheet.id}")
    response = client.post(f"/fiches/{sheet.id}/droit-d-acces", data={"csrf_token": token})
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    doc = Document(io.BytesIO(archive.read("donnees-personnelles.docx")))
    return (json.loads(archive.read("donnees-personnelles.json")),
            "\n".join(p.text for p in doc.paragraphs))


def test_the_export_holds_the_formal_decision_and_the_earlier_versions_of_the_avis(
        app, world, examined, db_session, vault):
    """Everything held about the person: the decision the competent institution took, and
    what the avis said before it was corrected, with the reason of the change."""
    _meeting, sheet, decision, _url = examined
    sheet.author_id = world["users"]["referent"].id  # the referent who exports it
    avis.correct(db_session, vault, decision, avis="maintien", avis_codes={"maintien"},
                 motivation="Poursuivre, avec un point d'étape.", actions=[],
                 come_back_on=None, formal_decision_by="departement",
                 reason="Erreur de saisie en séance.")
    db_session.commit()

    def record_formal_decision(dismissals):
        decisions.record(db_session, vault, decision, outcome="modifiee",
                         decided_on=date.today(), author=DGA,
                         detail="Accord limité à six mois.", actor_id=None,
                         dismissals=dismissals)

    with pytest.raises(TextsNeedReviewError) as review:  # the service's name, caught…
        record_formal_decision({})
    db_session.rollback()
    record_formal_decision({f.key: "partenaire"  # …and dismissed, as on the page
                            for r in review.value.reviews for f in r["findings"]})
    db_session.commit()

    data, text = exported(app, sheet)
    [given] = data["fiches"][0]["avis"]
    assert given["decision_formelle"] == {
        "decision": "Décision différente de l'avis", "date": date.today().isoformat(),
        "auteur": DGA, "precisions": "Accord limité à six mois."}
    [earlier] = given["versions_precedentes"]
    assert earlier["changement"] == "Correction avant signature"
    assert earlier["avis"] == "maintien"
    assert earlier["motivation"] == "Poursuivre l'accompagnement."
    assert earlier["preconisations"] == ["Atelier CV"]
    assert earlier["motif_du_changement"] == "Erreur de saisie en séance."
    for value in ("Décision formelle du", "Décision différente de l'avis", DGA,
                  "Accord limité à six mois.", "Version précédente de l'avis",
                  "Poursuivre l'accompagnement.", "Atelier CV",
                  "Motif du changement : Erreur de saisie en séance."):
        assert value in text


def test_a_referent_of_another_structure_gets_nothing(app, world):
    sheet = world["sheets"][0]
    client = client_as(app, "other_referent")
    token = csrf_token(client, "/")
    response = client.post(f"/fiches/{sheet.id}/droit-d-acces", data={"csrf_token": token})
    assert response.status_code == 404
