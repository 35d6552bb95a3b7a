"""Hostile text in every form outside the sheet: stored and shown back escaped, or refused in
French; never a crash, on SQLite and on PostgreSQL (which refuses NUL bytes)."""

import pytest
from markupsafe import escape
from sqlalchemy import select

from shared.models import AgendaItem, Member, User
from shared.text import canonical
from tests.factories import canary_identity, make_sheet
from tests.helpers import client_as, csrf_token, post

SHOWN_BACK = ["& < > \" ' <script>x</script>", "{{ 7*7 }} {% if 1 %}x{% endif %}",
              "\u202eRTL", "Émoji 🙂"]
REFUSED = ["nul\x00byte", "bell\x07", "x" * 5000]
PRESENTER = {"presenter_structure": "PLIE", "presenter_role": "Cheffe de projet"}


@pytest.mark.parametrize("value", SHOWN_BACK + REFUSED)
def test_the_facilitator_forms_survive_hostile_text(app, world, db_session, value):
    client = client_as(app, "facilitator")
    meeting = world["meeting"]
    url = f"/seances/{meeting.id}"
    responses = [
        post(client, f"{url}/points", {"title": value, "duration": "20",
                                         **PRESENTER}, url),
        post(client, f"/seances/membres/{world['north'].id}", {
            "name": value, "function": value, "structure_id": "0", "kind": "permanent",
            "acco_glo": "non"}),
        post(client, f"{url}/etat/cancel", {"reason": value}, url),
    ]
    for response in responses:
        assert response.status_code == 200, response.status_code
    body = client.get(url).get_data(as_text=True)
    titles = db_session.scalars(select(AgendaItem.title).where(
        AgendaItem.meeting_id == meeting.id)).all()
    if value in SHOWN_BACK:  # as typed, but for invisible controls (shared/text.py)
        assert canonical(value) in titles and str(escape(canonical(value))) in body
        assert "<script>x</script>" not in body
    else:
        assert value not in titles
        assert any("caractères" in r.get_data(as_text=True) for r in responses)
        assert value not in db_session.scalars(select(Member.name)).all()


@pytest.mark.parametrize("value", [*REFUSED, "<b>gras</b>"])
def test_the_admin_forms_survive_hostile_text(app, world, db_session, value):
    client = client_as(app, "admin")
    for url, data in [
        ("/admin/utilisateurs/nouveau", {"email": "h@test.invalid", "full_name": value,
                                         "role": "director", "structure_id": "0",
                                         "institution": "departement"}),
        ("/admin/circonscriptions/nouvelle", {"code": "C42", "name": value, "active": "y"}),
        ("/admin/structures/nouvelle", {"name": value, "type": "ali",
                                        "circonscription_id": "0", "active": "y"}),
        ("/admin/referentiels/motif/nouveau", {"code": "hostile", "label": value,
                                                "active": "y"}),
    ]:
        assert post(client, url, data).status_code == 200, url
    created = db_session.scalar(select(User).where(User.email == "h@test.invalid"))
    if value.startswith("<b>"):
        assert created is not None and created.full_name == value
        assert "&lt;b&gt;gras&lt;/b&gt;" in client.get("/admin/utilisateurs").get_data(
            as_text=True)
    else:
        assert created is None


@pytest.mark.parametrize("email", ["a\x00b@test.invalid", "x" * 3000, "' OR 1=1 --"])
def test_login_and_search_survive_hostile_text(app, world, email):
    client = app.test_client()
    token = csrf_token(client, "/connexion")
    response = client.post("/connexion", data={"csrf_token": token, "email": email,
                                               "password": "p\x00w"})
    assert response.status_code in (200, 401)
    referent = client_as(app, "referent")
    assert referent.get("/fiches/", query_string={"q": "ICL\x00%_'"}).status_code == 200


HUGE_ID = "99999999999999999999"  # beyond any database integer


def test_ids_beyond_a_database_integer_are_not_found_not_a_crash(app, world):
    referent, facilitator = client_as(app, "referent"), client_as(app, "facilitator")
    for url in (f"/fiches/{HUGE_ID}", f"/fiches/{HUGE_ID}/modifier"):
        assert referent.get(url).status_code == 404, url
    for url in (f"/seances/{HUGE_ID}", f"/seances/{HUGE_ID}/archive",
                f"/seances/membres/{HUGE_ID}", f"/seances/documents/{HUGE_ID}"):
        assert facilitator.get(url).status_code == 404, url
    meeting = world["meeting"]
    url = f"/seances/{meeting.id}"
    inscribed = post(facilitator, f"{url}/inscrire", {"sheet_id": HUGE_ID,
                                                      "time_slot": "14:30"}, url)
    assert inscribed.status_code in (200, 404)
    assert facilitator.get(f"{url}/documents", query_string={"fiche": HUGE_ID}
                           ).status_code in (200, 404)


def test_each_refusal_names_the_right_problem(app, world, db_session, vault):
    facilitator, referent = client_as(app, "facilitator"), client_as(app, "referent")
    meeting = world["meeting"]
    url = f"/seances/{meeting.id}"
    screened = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(30),
                          status="recevable")
    submitted = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(31),
                           status="soumise")
    db_session.commit()
    cases = [
        (facilitator, f"{url}/points", {"title": "Point", "duration": "²", **PRESENTER}, url,
         "La durée est un nombre entier de minutes."),
        (facilitator, f"{url}/points", {"title": "Point", "duration": "0", **PRESENTER}, url,
         "Durée entre 5 et 240 minutes."),
        (facilitator, f"{url}/inscrire", {"sheet_id": str(screened.id), "time_slot": "25:99",
                                          "part": "situation"}, url,
         "Créneau invalide : une heure de 00:00 à 23:59."),
        (facilitator, f"{url}/inscrire", {"sheet_id": str(screened.id), "time_slot": "",
                                          "part": "situation"}, url,
         "Choisissez un créneau."),
        (facilitator, f"{url}/reporter", {"day": "9999-12-31", "at": "14:00",
                                          "reason": "Salle indisponible"}, url,
         "dans les douze mois qui suivent"),
        (facilitator, f"/fiches/{submitted.id}/examen", {"decision": "return",
                                                         "reason": "x" * 10_050},
         f"/fiches/{submitted.id}", "caractères au plus"),
        (referent, "/fiches/nouvelle", {"nom": "😀", "prenom": "{{7*7}}",
                                        "date_naissance": "1980-01-01"}, None,
         "Au moins une lettre."),
    ]
    for client, target, data, form_url, message in cases:
        body = post(client, target, data, form_url).get_data(as_text=True)
        assert str(escape(message)) in body, (target, message)


def test_form_library_messages_are_in_french(app, world):
    facilitator, dpo = client_as(app, "facilitator"), client_as(app, "dpo")
    member = post(facilitator, f"/seances/membres/{world['north'].id}", {
        "name": "x" * 200, "function": "Fonction", "structure_id": "0", "kind": "permanent",
        "acco_glo": "non"}).get_data(as_text=True)
    journal = dpo.get("/dpo/journal", query_string={"since": "2026-13-45"}).get_data(
        as_text=True)
    for body in (member, journal):
        assert "Field cannot be longer" not in body and "Not a valid" not in body
    assert "ne peut pas contenir plus de 160 caractères" in member
    assert "N&#39;est pas une date valide" in journal or "N'est pas une date valide" in journal
