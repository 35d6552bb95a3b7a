"""Referents file situation sheets and facilitators screen them, through the real forms."""

import logging

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from shared.demo import demo_values
from shared.models import AuditEvent, Beneficiary, FormStash, Sheet, SheetEvent
from tests.conftest import csrf_token
from tests.factories import PASSWORD, canary_identity, canary_values, make_sheet
from tests.functional.test_cli import database_dump, redis_dump


def identity_form(identity) -> dict:
    return {k: getattr(identity, k) for k in (
        "nom", "prenom", "nom_naissance", "date_naissance", "numero_caf",
        "identifiant_france_travail", "adresse", "code_postal", "commune", "telephone",
        "email")}


def sheet_form(values: dict, identity) -> dict:
    """The edit form's fields for ``values`` (as the browser would post them)."""
    data = identity_form(identity)
    for name, value in values.items():
        if name == "freins":
            data.update({f"frein__{code}": level for code, level in value.items()})
        elif name == "actions":
            for row, entry in enumerate(value):
                data.update({f"action_{row}_{k}": v for k, v in entry.items()})
        elif isinstance(value, int):
            data[name] = str(value)
        else:
            data[name] = value
    return data


def create_draft(client, identity):
    token = csrf_token(client, "/fiches/nouvelle")
    response = client.post("/fiches/nouvelle", data={"csrf_token": token,
                                                     **identity_form(identity)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(response.headers["Location"].split("/")[2])


def post_sheet(client, sheet_id, data, action="save"):
    token = csrf_token(client, f"/fiches/{sheet_id}/modifier")
    return client.post(f"/fiches/{sheet_id}/modifier",
                       data={"csrf_token": token, "action": action, **data})


def status_of(db_session, sheet_id):
    db_session.expire_all()
    return db_session.get(Sheet, sheet_id).status


@pytest.fixture
def referent(app, world):
    client = app.test_client()
    token = csrf_token(client, "/connexion")
    client.post("/connexion", data={"csrf_token": token, "email": "referent@test.invalid",
                                    "password": PASSWORD})
    return client


@pytest.fixture
def facilitator(app, world):
    client = app.test_client()
    token = csrf_token(client, "/connexion")
    client.post("/connexion", data={"csrf_token": token, "email": "facilitator@test.invalid",
                                    "password": PASSWORD})
    return client


def test_a_sheet_goes_from_draft_to_screening_and_back_through_the_forms(
        referent, facilitator, db_session):
    identity = canary_identity(3)
    sheet_id = create_draft(referent, identity)
    assert status_of(db_session, sheet_id) == "brouillon"

    # Given a partial draft, saved and resumed
    partial = {"parcours": "Parcours long, freins multiples.", "situation_familiale": "isole"}
    response = post_sheet(referent, sheet_id, sheet_form(partial, identity))
    assert response.status_code == 302
    page = referent.get(f"/fiches/{sheet_id}/modifier").get_data(as_text=True)
    assert "Parcours long, freins multiples." in page and "Dernier enregistrement à" in page

    # When submitted incomplete, the errors are listed and nothing moves
    page = post_sheet(referent, sheet_id, sheet_form(partial, identity), "submit")
    body = page.get_data(as_text=True)
    assert "Question posée à l&#39;instance : Ce champ est obligatoire" in body
    assert 'href="#champ-question"' in body
    assert status_of(db_session, sheet_id) == "brouillon"

    # Then complete and submitted
    response = post_sheet(referent, sheet_id, sheet_form(demo_values(1), identity), "submit")
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    assert status_of(db_session, sheet_id) == "soumise"

    # The facilitator returns it for completion, with a comment the referent reads
    token = csrf_token(facilitator, f"/fiches/{sheet_id}")
    facilitator.post(f"/fiches/{sheet_id}/examen", data={
        "csrf_token": token, "decision": "return", "reason": "Préciser le contrat en cours."})
    assert status_of(db_session, sheet_id) == "a_completer"
    page = referent.get(f"/fiches/{sheet_id}").get_data(as_text=True)
    assert "Préciser le contrat en cours." in page

    # Resubmitted, then declared recevable
    post_sheet(referent, sheet_id, sheet_form(demo_values(1), identity), "submit")
    assert status_of(db_session, sheet_id) == "soumise"
    token = csrf_token(facilitator, f"/fiches/{sheet_id}")
    facilitator.post(f"/fiches/{sheet_id}/examen", data={"csrf_token": token,
                                                         "decision": "accept", "reason": ""})
    assert status_of(db_session, sheet_id) == "recevable"
    history = db_session.scalars(select(SheetEvent.action).where(
        SheetEvent.sheet_id == sheet_id).order_by(SheetEvent.id)).all()
    assert history == ["submit", "return", "submit", "accept"]
    audited = set(db_session.scalars(select(AuditEvent.action)))
    assert {"sheet_submit", "sheet_return", "sheet_accept"} <= audited


def test_the_facilitator_sees_the_pseudonym_and_reveals_identity_only_with_a_reason(
        referent, facilitator, db_session):
    identity = canary_identity(4)
    sheet_id = create_draft(referent, identity)
    post_sheet(referent, sheet_id, sheet_form(demo_values(2), identity), "submit")
    page = facilitator.get(f"/fiches/{sheet_id}").get_data(as_text=True)
    assert not any(value in page for value in canary_values(identity))
    inbox = facilitator.get("/fiches/?vue=instance").get_data(as_text=True)
    assert db_session.get(Sheet, sheet_id).reference in inbox
    token = csrf_token(facilitator, f"/fiches/{sheet_id}")
    refused = facilitator.post(f"/fiches/{sheet_id}/identite", data={"csrf_token": token})
    assert refused.status_code == 302
    shown = facilitator.post(f"/fiches/{sheet_id}/identite", data={
        "csrf_token": token, "reason": "Vérifier un doublon signalé"})
    assert identity.nom in shown.get_data(as_text=True)
    purposes = db_session.scalars(select(AuditEvent.purpose).where(
        AuditEvent.action == "decrypt")).all()
    assert "levée du pseudonyme : Vérifier un doublon signalé" in purposes


def test_sensitive_details_reach_the_instance_only_when_the_referent_shares_them(
        referent, facilitator, db_session):
    identity = canary_identity(5)
    sheet_id = create_draft(referent, identity)
    values = {**demo_values(0), "sante_detail": "Suivi spécialisé régulier en cours."}
    post_sheet(referent, sheet_id, sheet_form(values, identity), "submit")
    page = facilitator.get(f"/fiches/{sheet_id}").get_data(as_text=True)
    assert "Suivi spécialisé régulier" not in page and "Non partagé avec l" in page


def test_disallowed_transitions_are_refused_clearly_and_change_nothing(
        referent, facilitator, db_session, world, vault):
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(6),
                       author_id=world["users"]["referent"].id, status="recevable")
    db_session.commit()
    events_before = db_session.scalar(select(func.count()).select_from(SheetEvent))

    token = csrf_token(facilitator, f"/fiches/{sheet.id}")
    response = facilitator.post(f"/fiches/{sheet.id}/examen", data={
        "csrf_token": token, "decision": "return", "reason": "Encore ?"}, follow_redirects=True)
    assert "Impossible de renvoyer pour complément une fiche « Recevable »" in \
        response.get_data(as_text=True)
    response = referent.get(f"/fiches/{sheet.id}/modifier", follow_redirects=True)
    assert "elle n&#39;est plus modifiable" in response.get_data(as_text=True)
    token = csrf_token(referent, f"/fiches/{sheet.id}")
    response = referent.post(f"/fiches/{sheet.id}/retirer", data={"csrf_token": token},
                             follow_redirects=True)
    assert "Indiquez le motif pour retirer la fiche." in response.get_data(as_text=True)
    assert status_of(db_session, sheet.id) == "recevable"
    assert db_session.scalar(select(func.count()).select_from(SheetEvent)) == events_before

    referent.post(f"/fiches/{sheet.id}/retirer", data={"csrf_token": token,
                                                      "reason": "La personne a déménagé."})
    assert status_of(db_session, sheet.id) == "retiree"
    response = referent.post(f"/fiches/{sheet.id}/retirer", data={
        "csrf_token": token, "reason": "Encore"}, follow_redirects=True)
    assert "Impossible de retirer une fiche « Retirée »" in response.get_data(as_text=True)


def test_the_free_text_guard_flags_the_persons_identity_until_rephrased_or_confirmed(
        referent, db_session):
    identity = canary_identity(7)
    sheet_id = create_draft(referent, identity)
    leaky = {**demo_values(0),
             "question": f"Madame {identity.nom.upper()} peut-elle entrer en AG ?",
             "parcours": f"Joignable au {identity.telephone[:2]} {identity.telephone[2:4]} "
                         f"{identity.telephone[4:6]} {identity.telephone[6:8]} "
                         f"{identity.telephone[8:]}."}
    body = post_sheet(referent, sheet_id, sheet_form(leaky, identity), "submit") \
        .get_data(as_text=True)
    assert "Textes à reformuler" in body
    assert "le nom de la personne" in body and "le numéro de téléphone" in body
    assert status_of(db_session, sheet_id) == "brouillon"  # saved, not submitted
    response = post_sheet(referent, sheet_id, {**sheet_form(leaky, identity),
                                               "guard_confirmed": "y"}, "submit")
    assert response.status_code == 302
    assert status_of(db_session, sheet_id) == "soumise"
    assert db_session.scalar(select(AuditEvent.fields).where(
        AuditEvent.action == "guard_overridden")) == "parcours,question"


def test_a_known_person_is_found_and_the_new_sheet_attached_to_them(
        app, referent, db_session, world, vault):
    identity = canary_identity(8)
    first = create_draft(referent, identity)
    # Same person typed differently, by the same structure
    variant = identity_form(identity) | {"nom": identity.nom.upper(), "prenom":
                                         identity.prenom.lower()}
    token = csrf_token(referent, "/fiches/nouvelle")
    response = referent.post("/fiches/nouvelle", data={"csrf_token": token, **variant},
                             follow_redirects=True)
    assert "Une fiche existe déjà pour cette personne dans votre structure" in \
        response.get_data(as_text=True)
    sheets = db_session.scalars(select(Sheet).order_by(Sheet.id)).all()
    assert sheets[-1].beneficiary_id == db_session.get(Sheet, first).beneficiary_id
    assert db_session.scalar(select(func.count()).select_from(Beneficiary)) == \
        db_session.scalar(select(func.count(func.distinct(Sheet.beneficiary_id))))

    # Another structure's referent is told only that someone else follows the person
    other = app.test_client()
    token = csrf_token(other, "/connexion")
    other.post("/connexion", data={"csrf_token": token, "email": "other.referent@test.invalid",
                                   "password": PASSWORD})
    token = csrf_token(other, "/fiches/nouvelle")
    body = other.post("/fiches/nouvelle", data={"csrf_token": token, **identity_form(identity)},
                      follow_redirects=True).get_data(as_text=True)
    assert "déjà suivie par une autre structure" in body
    assert db_session.get(Sheet, first).reference not in body


HOSTILE = {
    "markup": "& < > \" ' <script>alert(1)</script>",
    "jinja": "{{ 7*7 }} {% if true %}x{% endif %}",
    "rtl": "\u202eenilno\u202c texte",
    "emoji": "Émoji 🙂👩🏾‍⚕️ ok",
}
REFUSED = {
    "control": ("ctrl\x01\x07 chars", "Caractères de contrôle"),
    "nul": ("nul\x00byte", "Caractères de contrôle"),
    "long": ("x" * 4500, "4000 caractères au plus"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_is_stored_and_shown_back_exactly(referent, db_session, name):
    value = HOSTILE[name]
    identity = canary_identity(9)
    sheet_id = create_draft(referent, identity)
    values = {**demo_values(0), "parcours": value, "question": value, "proposition": value,
              "referent_fonction": value[:120], "commentaire_personne": value}
    data = sheet_form(values, identity) | {"commune": value, "adresse": value}
    assert post_sheet(referent, sheet_id, data).status_code == 302
    page = referent.get(f"/fiches/{sheet_id}").get_data(as_text=True)
    assert str(escape(value)) in page  # shown back exactly, escaped
    assert "<script>alert(1)</script>" not in page
    assert "49" not in page.split("Parcours et situation")[1][:200]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unacceptable_text_is_refused_with_a_clear_message_and_nothing_changes(
        referent, db_session, name):
    value, message = REFUSED[name]
    identity = canary_identity(9)
    sheet_id = create_draft(referent, identity)
    before = db_session.get(Sheet, sheet_id).situation_data
    body = post_sheet(referent, sheet_id, sheet_form({"parcours": value}, identity)) \
        .get_data(as_text=True)
    assert message in body and "href=\"#champ-parcours\"" in body
    db_session.expire_all()
    assert db_session.get(Sheet, sheet_id).situation_data == before
    refused = post_sheet(referent, sheet_id, identity_form(identity) | {"nom": value[:300]})
    assert refused.status_code == 200  # the identity refuses it too, without a crash


def test_what_was_typed_survives_an_expired_session(app, referent, db_session, world):
    identity = canary_identity(10)
    sheet_id = create_draft(referent, identity)
    token = csrf_token(referent, f"/fiches/{sheet_id}/modifier")
    referent.delete_cookie("session")  # the session expired while the referent was typing
    typed = sheet_form({"parcours": "Texte long tapé pendant une heure."}, identity)
    response = referent.post(f"/fiches/{sheet_id}/modifier",
                             data={"csrf_token": token, "action": "save", **typed})
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]
    stash = db_session.scalars(select(FormStash)).one()
    assert "Texte long" not in stash.payload  # kept encrypted

    login = csrf_token(referent, "/connexion")
    response = referent.post(response.headers["Location"], data={
        "csrf_token": login, "email": "referent@test.invalid", "password": PASSWORD})
    assert response.headers["Location"] == f"/fiches/{sheet_id}/modifier"
    page = referent.get(response.headers["Location"]).get_data(as_text=True)
    assert "Texte long tapé pendant une heure." in page and "restaurée" in page
    assert db_session.scalar(select(func.count()).select_from(FormStash)) == 0


def test_no_identity_value_reaches_the_database_files_redis_or_the_logs(
        referent, db_session, engine, settings, redis, caplog):
    caplog.set_level(logging.DEBUG)
    identity = canary_identity(11)
    sheet_id = create_draft(referent, identity)
    post_sheet(referent, sheet_id, sheet_form(demo_values(0), identity), "submit")
    referent.get(f"/fiches/{sheet_id}")
    haystack = database_dump(engine, settings) + redis_dump(redis) + caplog.text.encode()
    for value in canary_values(identity):
        assert value.encode() not in haystack


def test_directors_and_admins_never_reach_sheets(app, world, db_session, vault):
    from tests.intake.test_access import client_as

    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(12),
                       status="soumise")
    db_session.commit()
    for role in ("director", "admin"):
        client = client_as(app, role)
        for url in ("/fiches/", f"/fiches/{sheet.id}", "/fiches/nouvelle"):
            response = client.get(url)
            assert response.status_code == 403
            assert sheet.reference not in response.get_data(as_text=True)
