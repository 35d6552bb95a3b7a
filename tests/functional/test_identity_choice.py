"""A referent starts a new sheet for a person their structure knows (issue 15, bug 1)."""

import html
import io
import json
import re
import zipfile

from sqlalchemy import select

from shared.models import AuditEvent, Sheet
from tests.factories import canary_identity
from tests.helpers import create_draft, csrf_token, identity_form, logged_in


def _new_sheet(client, data):
    token = csrf_token(client, "/fiches/nouvelle")
    return client.post("/fiches/nouvelle", data={"csrf_token": token, **data})


def test_a_new_sheet_typed_with_the_name_only_loses_nothing_of_the_earlier_sheet(app, world):
    referent = logged_in(app, "referent@test.invalid")
    identity = canary_identity(3)
    first = create_draft(referent, identity)
    response = _new_sheet(referent, {"nom": identity.nom, "prenom": identity.prenom,
                                     "date_naissance": identity.date_naissance})
    assert response.status_code == 302  # nothing differs: straight to the new draft
    page = html.unescape(referent.get(f"/fiches/{first}").get_data(as_text=True))
    for value in (identity.numero_caf, identity.adresse, identity.telephone, identity.email):
        assert value in page
    token = csrf_token(referent, f"/fiches/{first}")
    archive = zipfile.ZipFile(io.BytesIO(referent.post(
        f"/fiches/{first}/droit-d-acces", data={"csrf_token": token}).data))
    exported = json.loads(archive.read("donnees-personnelles.json"))["identite"]
    assert exported["numero_caf"] == identity.numero_caf
    assert exported["telephone"] == identity.telephone


def test_differing_values_are_shown_side_by_side_and_the_choice_is_audited(app, world,
                                                                          db_session):
    referent = logged_in(app, "referent@test.invalid")
    identity = canary_identity(4)
    first = create_draft(referent, identity)
    typed = {"nom": identity.nom, "prenom": identity.prenom,
             "date_naissance": identity.date_naissance, "telephone": "0798765432",
             "email": "nouvelle.adresse@leak-probe.invalid"}
    response = _new_sheet(referent, typed)
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200
    rows = dict(re.findall(r'<tr data-field="(\w+)">(.*?)</tr>', page, re.S))
    assert sorted(rows) == ["email", "telephone"]
    assert identity.telephone in rows["telephone"] and "0798765432" in rows["telephone"]
    assert identity.email in rows["email"] and typed["email"] in rows["email"]
    new = db_session.scalars(select(Sheet).order_by(Sheet.id.desc())).first()

    token = csrf_token(referent, f"/fiches/{first}")
    response = referent.post(f"/fiches/{new.id}/identite/choix", data={
        "csrf_token": token, "typed_telephone": "0798765432", "choice_telephone": "update",
        "typed_email": typed["email"], "choice_email": "keep"})
    assert response.status_code == 302
    page = html.unescape(referent.get(f"/fiches/{first}").get_data(as_text=True))
    assert "0798765432" in page and identity.telephone not in page
    assert identity.email in page and typed["email"] not in page
    assert identity.numero_caf in page
    event = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "identity_differences_resolved")).one()
    assert set(event.fields.split(",")) == {"updated:telephone", "kept:email"}
    assert event.actor_id == world["users"]["referent"].id


def test_a_choice_must_be_made_for_every_differing_value(app, world, db_session):
    referent = logged_in(app, "referent@test.invalid")
    identity = canary_identity(5)
    create_draft(referent, identity)
    _new_sheet(referent, identity_form(identity) | {"telephone": "0798765432"})
    new = db_session.scalars(select(Sheet).order_by(Sheet.id.desc())).first()
    token = csrf_token(referent, "/fiches/nouvelle")
    response = referent.post(f"/fiches/{new.id}/identite/choix", data={
        "csrf_token": token, "typed_telephone": "0798765432"})
    assert response.status_code == 400
    assert "Choisissez, pour chaque information" in html.unescape(
        response.get_data(as_text=True))
    assert db_session.scalar(select(AuditEvent.id).where(
        AuditEvent.action == "identity_differences_resolved")) is None
