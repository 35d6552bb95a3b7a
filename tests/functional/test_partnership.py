"""Partnership and territorial-project items through the facilitator's forms: presenter as a
structure and a role, slot, summary, next step and follow-up date, in the agenda, the minutes
and the follow-up dashboard."""

import html
import io
from datetime import timedelta

from docx import Document
from sqlalchemy import select

from shared.models import AgendaItem, AuditEvent, GeneratedDocument
from tests.helpers import flash_text, minutes_docx, post, reload, run_queue


def _cells(body: bytes) -> list[str]:
    return [c.text for t in Document(io.BytesIO(body)).tables for r in t.rows for c in r.cells]


def test_a_partnership_item_has_a_presenter_and_a_slot_in_the_agenda(
        facilitator, world, db_session, vault, settings, redis):
    meeting = world["meeting"]
    url = f"/seances/{meeting.id}"

    # A presenter named in person is refused: a structure and a role only
    page = post(facilitator, f"{url}/points", {
        "title": "Mobilité solidaire", "duration": "20", "slot": "14:10",
        "presenter_structure": "PLIE de Plaine Commune",
        "presenter_role": "Madame Jeanne Martin"}, url)
    assert "Point non ajouté" in html.unescape(flash_text(page))
    assert "Fonction de la personne qui présente" in html.unescape(flash_text(page))
    page = post(facilitator, f"{url}/points", {
        "title": "Mobilité solidaire", "duration": "20", "slot": "14:10",
        "presenter_structure": "", "presenter_role": "Chargée de mission"}, url)
    assert "Structure qui présente" in html.unescape(flash_text(page))

    # A structure of the reference list is taken as it is (a town's name is no person)
    for title, structure in (("Mobilité solidaire", "PLIE de Plaine Commune"),
                             ("Offre de l'ALI", world["structures"]["ali"].name)):
        page = post(facilitator, f"{url}/points", {
            "title": title, "duration": "20", "slot": "14:10",
            "presenter_structure": structure, "presenter_role": "Chargée de mission"}, url)
        assert "Point ajouté à l'ordre du jour." in html.unescape(flash_text(page))
    item = db_session.scalars(select(AgendaItem).where(
        AgendaItem.title == "Mobilité solidaire")).one()
    assert (item.presenter_structure, item.presenter_role, item.time_slot) == (
        "PLIE de Plaine Commune", "Chargée de mission", "14:10")

    post(facilitator, f"{url}/documents/agenda", form_url=url)
    run_queue(settings, redis)
    stored = db_session.scalars(select(GeneratedDocument).where(
        GeneratedDocument.kind == "agenda")).one()
    cells = _cells(vault.open_blob(stored, "body"))
    row = cells.index("Mobilité solidaire")
    assert cells[row - 1:row + 3] == ["14\u00a0h\u00a010", "Mobilité solidaire",
                                      "PLIE de Plaine Commune – Chargée de mission", "20 min"]


def test_the_outcome_of_a_partnership_item_reaches_the_minutes_and_the_dashboard(
        facilitator, world, db_session, vault, settings, redis):
    meeting = world["meeting"]
    item = next(i for i in meeting.items if i.part == "partenariat")
    url = f"/seances/{meeting.id}/points/{item.id}/partenariat"
    follow_up = meeting.day + timedelta(days=40)
    outcome = {"summary": "Présentation de l'offre d'ateliers collectifs.",
               "next_step": "Orienter les personnes intéressées vers l'ALI.",
               "follow_up_on": follow_up.isoformat()}

    # Before the session is held, the outcome cannot be written
    page = post(facilitator, url, outcome, url)
    assert reload(db_session, AgendaItem, item.id).summary == ""
    assert "une fois la séance tenue" in html.unescape(page.get_data(as_text=True))

    meeting.state = "tenue"
    db_session.commit()
    page = post(facilitator, url, {**outcome, "summary": "Échange avec Madame Jeanne Martin."},
                url)
    assert "Compte rendu non enregistré" in html.unescape(flash_text(page))
    page = post(facilitator, url, {**outcome, "follow_up_on": meeting.day.isoformat()}, url)
    assert "La date de suivi doit suivre la séance." in html.unescape(flash_text(page))
    assert reload(db_session, AgendaItem, item.id).summary == ""

    page = post(facilitator, url, outcome, url)
    assert "Compte rendu du point partenarial enregistré." in html.unescape(flash_text(page))
    item = reload(db_session, AgendaItem, item.id)
    assert (item.summary, item.next_step, item.follow_up_on) == (
        outcome["summary"], outcome["next_step"], follow_up)
    assert "meeting_partnership_recorded" in set(db_session.scalars(select(AuditEvent.action)))

    # The minutes carry the presenter, the summary, the next step and the follow-up date
    cells = _cells(minutes_docx(facilitator, db_session, vault, settings, redis, meeting))
    start = cells.index("Présenté par")
    assert cells[start:start + 10] == [
        "Présenté par", "ALI de Saint-Denis – Directrice",
        "Horaire et durée", "20 min",
        "Synthèse", outcome["summary"],
        "Décision ou suite à donner", outcome["next_step"],
        "Date de suivi", follow_up.strftime("%d/%m/%Y")]

    # The follow-up dashboard lists it until it is marked done
    page = html.unescape(facilitator.get("/suivi/").get_data(as_text=True))
    assert "Présentation de l'ALI" in page and follow_up.strftime("%d/%m/%Y") in page
    page = post(facilitator, f"/suivi/partenariat/{item.id}/fait", form_url="/suivi/")
    assert "Suivi du point partenarial marqué fait." in html.unescape(flash_text(page))
    assert "Présentation de l'ALI" not in html.unescape(page.get_data(as_text=True))
    assert reload(db_session, AgendaItem, item.id).follow_up_done_on is not None
