"""The monthly cycle after the avis: returning situations, fiches retour of adjourned
situations, documents produced after « Clore la saisie des avis »."""

from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from docx import Document
from sqlalchemy import func, select

from generator.contexts import dossier_context, feedback_context
from generator.render import render, template_path
from shared.demo import demo_values
from shared.domain import documents, meetings, returns
from shared.domain.meetings import ActionInput, adjourn, create_meeting, inscribe_sheet
from shared.domain.sheets import read_values
from shared.errors import InvalidTransitionError
from shared.models import AgendaItem, Notification, Sheet
from tests.factories import PLANNED_ON, canary_identity, make_sheet
from tests.helpers import (
    close,
    csrf_token,
    give_avis,
    hold,
    logged_in,
    month_sessions,
    post_sheet,
    purge,
    sheet_form,
)

COME_BACK = date(2027, 3, 15)


def returns_section(page: str) -> str:
    start = page.find("Retours en instance proposés")
    return page[start:page.index("</table>", start)] if start >= 0 else ""


def test_a_situation_in_suivi_comes_back_as_a_new_passage_of_the_same_sheet(
        app, world, db_session, vault):
    referent_user = world["users"]["referent"]
    identity = canary_identity(5)
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], identity,
                       author_id=referent_user.id, status="recevable")
    first = world["meeting"]
    inscribe_sheet(db_session, vault, first, sheet, "16:00")
    hold(db_session, first)
    give_avis(db_session, vault, first, sheet, "Premier passage : reprendre dans trois mois.",
              come_back_on=COME_BACK)
    close(db_session, vault, first)
    assert sheet.status == "suivi"
    sessions = month_sessions(db_session, world["north"])
    sheets_before = db_session.scalar(select(func.count()).select_from(Sheet))

    # Proposed on the session nearest the return date only
    facilitator = logged_in(app, "facilitator@test.invalid")
    march = f"/seances/{sessions['mars'].id}"
    assert sheet.reference in returns_section(facilitator.get(march).get_data(as_text=True))
    for other in ("janvier", "fevrier", "avril"):
        page = facilitator.get(f"/seances/{sessions[other].id}").get_data(as_text=True)
        assert sheet.reference not in returns_section(page), other

    # The facilitator brings it back: the referent is told to update the texts
    response = facilitator.post(f"/suivi/retours/{sheet.id}", data={
        "csrf_token": csrf_token(facilitator, march), "seance": sessions["mars"].id})
    assert response.headers["Location"] == f"{march}#retours"
    db_session.expire_all()
    assert sheet.status == "retour"
    assert sheet.events[-1].action == "bring_back"
    assert vault.open(sheet.events[-1], "comment").reveal() == \
        "Retour en instance prévu le 15/03/2027."
    assert db_session.scalar(select(Notification.kind).where(
        Notification.sheet_id == sheet.id, Notification.user_id == referent_user.id)
        .order_by(Notification.id.desc()).limit(1)) == "sheet_brought_back"
    page = facilitator.get(march).get_data(as_text=True)
    assert "En attente de l'actualisation" in returns_section(page)

    # The referent updates the texts (identity already there) and resends the sheet
    referent = logged_in(app, "referent@test.invalid")
    assert "Actualiser pour le retour en instance" in referent.get(
        f"/fiches/{sheet.id}").get_data(as_text=True)
    updated = demo_values(0) | {"question": "Le permis est obtenu : quelle suite au parcours ?"}
    response = post_sheet(referent, sheet.id, sheet_form(updated, identity), action="submit")
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    db_session.expire_all()
    assert sheet.status == "recevable"
    assert read_values(vault, sheet, purpose="test")["question"] == updated["question"]
    db_session.commit()  # the decryption's audit row: SQLite has one writer at a time

    # The facilitator inscribes it again: a new passage of the same sheet
    page = facilitator.get(march).get_data(as_text=True)
    assert f"{sheet.reference} – {sheet.beneficiary.pseudonym} (retour en instance)" in page
    response = facilitator.post(f"{march}/inscrire", data={
        "csrf_token": csrf_token(facilitator, march), "sheet_id": sheet.id,
        "time_slot": "14:30", "part": "situation", "icag_kind": ""})
    assert response.status_code == 302
    db_session.expire_all()
    assert sheet.status == "inscrite"
    assert db_session.scalar(select(func.count()).select_from(Sheet)) == sheets_before
    assert [i.meeting_id for i in meetings.previous_passages(db_session, sheet)] == [
        first.id, sessions["mars"].id]

    # Examined again: each passage has its own avis and its own fiche retour
    second = sessions["mars"]
    hold(db_session, second)
    give_avis(db_session, vault, second, sheet, "Second passage : parcours consolidé.",
              actions=[ActionInput("Inscription en formation", None, None)])
    close(db_session, vault, second)
    assert sheet.status == "suivi"  # a préconisation remains open
    feedbacks = {}
    for meeting in (first, second):
        assert sheet.id in documents.feedback_sheet_ids(db_session, meeting)
        feedbacks[meeting.id] = feedback_context(db_session, vault, meeting, 1, date.today(),
                                                 sheet)
    assert feedbacks[first.id]["motivation"].startswith("Premier passage")
    assert feedbacks[second.id]["motivation"].startswith("Second passage")
    # The first passage's return date is spent: only the latest avis counts
    assert meetings.situations_to_bring_back(db_session, {world["north"].id},
                                             date(2027, 12, 31)) == []


def test_the_dashboard_brings_back_a_situation_due_soon(app, world, db_session, vault):
    sheet = world["sheets"][0]
    meeting = world["meeting"]
    hold(db_session, meeting)
    give_avis(db_session, vault, meeting, sheet, "À revoir bientôt.",
              come_back_on=date(2026, 12, 20))
    adjourn(db_session, vault, meeting, next(i.id for i in meeting.items
                                             if i.sheet_id == world["sheets"][1].id),
            "Complément d'information demandé.")
    close(db_session, vault, meeting)
    facilitator = logged_in(app, "facilitator@test.invalid")
    page = facilitator.get("/suivi/").get_data(as_text=True)
    assert sheet.reference in page and "Faire revenir en instance" in page

    response = facilitator.post(f"/suivi/retours/{sheet.id}",
                                data={"csrf_token": csrf_token(facilitator, "/suivi/")})
    assert response.headers["Location"] == "/suivi/"
    db_session.expire_all()
    assert sheet.status == "retour"
    page = facilitator.get("/suivi/").get_data(as_text=True)
    assert "Retour en instance : à actualiser" in page  # listed, its button gone
    # Twice is refused with a French message, and changes nothing
    response = facilitator.post(f"/suivi/retours/{sheet.id}", follow_redirects=True,
                                data={"csrf_token": csrf_token(facilitator, "/suivi/")})
    assert "Seule une situation en suivi peut revenir en instance" in response.get_data(
        as_text=True)
    # Another circonscription's facilitator cannot reach it
    other = logged_in(app, "other.facilitator@test.invalid")
    assert other.post(f"/suivi/retours/{sheet.id}", data={
        "csrf_token": csrf_token(other, "/suivi/")}).status_code == 404


def test_an_adjourned_situation_gets_a_fiche_retour_saying_why_and_when(
        app, settings, world, db_session, vault):
    meeting = world["meeting"]
    examined, adjourned = world["sheets"]
    hold(db_session, meeting)
    give_avis(db_session, vault, meeting, examined, "Poursuivre.")
    item = next(i for i in meeting.items if i.sheet_id == adjourned.id)
    adjourn(db_session, vault, meeting, item.id, "Bilan de santé attendu.")
    meetings.transition(db_session, vault, meeting, "finish_avis")
    db_session.commit()

    job = documents.request_document(db_session, meeting, "feedback", None, adjourned)
    assert job.sheet_id == adjourned.id
    context = feedback_context(db_session, vault, meeting, 1, date.today(), adjourned)
    assert context["avis"] == "Situation ajournée" and context["adjourned"] is True
    assert context["motivation"] == "Bilan de santé attendu."
    assert context["next_passage"] == "à la prochaine séance de l'instance, date à fixer"
    cells = [c.text for t in Document(io.BytesIO(render(template_path(
        settings.templates_dir, "feedback"), context))).tables for r in t.rows for c in r.cells]
    assert "Motif de l'ajournement" in cells and "Motivation" not in cells
    db_session.commit()
    page = logged_in(app, "facilitator@test.invalid").get(
        f"/seances/{meeting.id}").get_data(as_text=True)
    assert f"Fiche retour au référent – {adjourned.reference}" in page

    # Re-inscribed on a later session: the fiche retour gives that date
    later = create_meeting(db_session, world["north"], datetime(2027, 1, 12, 14), "Salle 2",
                           today=PLANNED_ON)
    inscribe_sheet(db_session, vault, later, adjourned, "14:30")
    context = feedback_context(db_session, vault, meeting, 2, date.today(), adjourned)
    assert context["next_passage"] == ("mardi 12 janvier 2027 à 14\u00a0h\u00a000, "
                                       "séance programmée")


def test_the_dossier_and_emargement_are_archive_copies_after_the_avis_are_closed(
        app, world, db_session, vault):
    meeting = world["meeting"]
    hold(db_session, meeting)
    for sheet in world["sheets"]:
        give_avis(db_session, vault, meeting, sheet, "Poursuivre.")
    db_session.commit()
    facilitator = logged_in(app, "facilitator@test.invalid")
    page = facilitator.get(f"/seances/{meeting.id}").get_data(as_text=True)
    assert ("document(s) jamais généré(s) pour cette séance : Dossier de séance, Feuille "
            "d&#39;émargement") in page

    meetings.transition(db_session, vault, meeting, "finish_avis")
    db_session.commit()
    page = facilitator.get(f"/seances/{meeting.id}").get_data(as_text=True)
    assert "jamais généré" not in page
    assert "Dossier de séance (copie d&#39;archive)" in page
    assert "Feuille d&#39;émargement (copie d&#39;archive)" in page
    for kind in ("dossier", "attendance"):
        job = documents.request_document(db_session, meeting, kind, None, vault=vault)
        assert job.kind == kind
    context = dossier_context(db_session, vault, meeting, meeting.content_version,
                              date.today())
    assert context["version"].endswith("(copie d'archive établie après la séance)")
    assert {s["reference"] for s in context["sheets"]} == {s.reference
                                                          for s in world["sheets"]}
    # Before the avis were closed the same copy was the session's own, not an archive
    meeting.state = "tenue"
    assert dossier_context(db_session, vault, meeting, 1, date.today())["version"] == "1"
    db_session.rollback()


def test_a_sheet_not_in_suivi_cannot_be_brought_back(world, db_session, vault):
    from shared.domain.returns import bring_back

    sheet = world["sheets"][0]
    try:
        bring_back(db_session, vault, sheet, actor_id=None)
    except InvalidTransitionError as exc:
        assert "Inscrite" in exc.message
    else:
        raise AssertionError("an inscribed sheet was brought back")
    assert sheet.status == "inscrite"
    assert db_session.scalar(select(func.count()).select_from(AgendaItem)) == 3


def test_a_purged_persons_situation_does_not_come_back(world, db_session, vault):
    """As bug 6 of the simulated year, on the way back: a situation in suivi whose person was
    purged was still proposed for its return. Brought back, its referent would type the
    person's data again, under a new key that the retention (it purges a person once) would
    never delete."""
    meeting, sheet = world["meeting"], world["sheets"][0]
    hold(db_session, meeting)
    give_avis(db_session, vault, meeting, sheet, "À revoir.", come_back_on=COME_BACK)
    close(db_session, vault, meeting)
    march = month_sessions(db_session, world["north"])["mars"]
    assert [p.sheet for p in returns.proposed_returns(db_session, march)] == [sheet]
    purge(db_session, vault, sheet)
    assert returns.proposed_returns(db_session, march) == []
    assert meetings.situations_to_bring_back(db_session, {world["north"].id},
                                             date(2027, 12, 31)) == []
    with pytest.raises(InvalidTransitionError, match="durée de conservation"):
        returns.bring_back(db_session, vault, sheet, actor_id=None)
    assert sheet.status == "suivi"
