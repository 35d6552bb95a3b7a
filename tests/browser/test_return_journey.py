"""A situation comes back three months later, in a real browser."""

from __future__ import annotations

import io
from datetime import date

from docx import Document

from shared.domain import meetings
from shared.models import Sheet
from tests.browser.pages import LoginPage, MeetingPage, SheetPage
from tests.factories import PASSWORD, canary_identity, canary_values, make_sheet
from tests.helpers import close, give_avis, hold, month_sessions

THREE_MONTHS_LATER = date(2027, 3, 15)  # examined on 15/12/2026
NEW_QUESTION = "Le permis est obtenu : quelle suite donner au parcours vers l'emploi ?"


def text_of(body: bytes) -> str:
    document = Document(io.BytesIO(body))
    cells = [c.text for t in document.tables for r in t.rows for c in r.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


def test_a_situation_comes_back_three_months_later(
        browser, live_server, world, db_session, vault, redis, request):
    # The referent's situation was examined on 15/12/2026: suivi, back in three months
    identity = canary_identity(7)
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], identity,
                       author_id=world["users"]["referent"].id, status="recevable")
    first = world["meeting"]
    meetings.inscribe_sheet(db_session, vault, first, sheet, "16:00")
    hold(db_session, first)
    give_avis(db_session, vault, first, sheet, "Premier passage : appui au permis.",
              come_back_on=THREE_MONTHS_LATER)
    close(db_session, vault, first)
    sessions = month_sessions(db_session, world["north"])
    march = sessions["mars"]
    sheet_id, reference = sheet.id, sheet.reference

    # Proposed on the session nearest the return date; the facilitator brings it back
    home = LoginPage(browser, live_server).open().login("facilitator@test.invalid", PASSWORD)
    page = home.open_meetings_from_menu().open_meeting("09/03/2027 14:00")
    assert page.heading == "ICL-I Saint-Denis – 09/03/2027 à 14:00"
    [proposal] = page.proposed_returns()
    assert proposal.startswith(f"15/03/2027 {reference}") and "Suivi" in proposal
    page.bring_back(reference)
    assert any("invité·e à l'actualiser" in m for m in page.flash_messages())
    assert "En attente de l'actualisation" in page.proposed_returns()[0]
    page.log_out()

    # The referent updates the texts, the identity already there, and resends the sheet
    LoginPage(browser, live_server).open().login("referent@test.invalid", PASSWORD)
    edit = SheetPage(browser, live_server).open(sheet_id).start_update_for_return()
    assert edit.text_of("Nom d'usage") == identity.nom  # no identity typed again
    edit.write("Question posée à l'instance", NEW_QUESTION)
    shown = edit.resend_updated()
    assert any("actualisée" in m for m in shown.flash_messages()), shown.flash_messages()
    shown.log_out()

    # The facilitator inscribes it again: a new passage of the same sheet
    LoginPage(browser, live_server).open().login("facilitator@test.invalid", PASSWORD)
    page = MeetingPage(browser, live_server)
    page.visit(f"/seances/{march.id}")
    choice = f"{reference} – {sheet.beneficiary.pseudonym} (retour en instance)"
    assert choice in page.inscription_choices()
    page.inscribe(choice, "14:30")
    assert f"{reference} – {sheet.beneficiary.pseudonym}" in page.agenda_points()
    assert page.proposed_returns() == []

    # Examined again (the avis pages are tested elsewhere): its own fiche retour
    db_session.expire_all()
    march = db_session.get(type(march), march.id)
    sheet = db_session.get(Sheet, sheet_id)
    assert sheet.status == "inscrite"
    assert [i.meeting_id for i in meetings.previous_passages(db_session, sheet)] == [
        first.id, march.id]
    hold(db_session, march)
    give_avis(db_session, vault, march, sheet, "Second passage : entrée en formation.")
    meetings.transition(db_session, vault, march, "finish_avis")
    db_session.commit()
    page.visit(f"/seances/{march.id}")
    label = page.generate_feedback(reference)
    request.getfixturevalue("worker_process")
    headers, body = page.download(page.wait_for_document_ready(label, timeout=120))
    assert headers["Content-Disposition"].startswith("attachment")
    text = text_of(body)
    assert reference in text and "Second passage : entrée en formation." in text
    assert "Premier passage" not in text
    assert not any(value in text for value in canary_values(identity))
    assert page.console_errors() == []
