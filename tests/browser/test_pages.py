"""The real pages in a headless Chromium, as their users go through them."""

from __future__ import annotations

import io

from docx import Document

from shared.domain.sheets import read_values
from shared.models import Sheet
from tests.browser.pages import LoginPage, MeetingPage, Page, SheetEditPage
from tests.factories import PASSWORD, canary_identity, make_sheet

MEETING_DATE = "15/12/2026 14:00"  # factories.meeting_with_agenda


def test_a_facilitator_generates_the_agenda_and_the_page_shows_it_ready_by_itself(
        browser, live_server, world, redis, request):
    home = LoginPage(browser, live_server).open().login("facilitator@test.invalid", PASSWORD)
    meetings = home.open_meetings_from_menu()
    assert meetings.heading == "Séances"
    assert meetings.meeting_dates() == [MEETING_DATE]
    meeting = meetings.open_meeting(MEETING_DATE)
    assert meeting.heading == "ICL-I Saint-Denis – 15/12/2026 à 14:00"
    assert meeting.document_status() == "Pas encore généré"

    meeting.generate_agenda()
    assert meeting.document_status().startswith("En attente")
    meeting.remember_this_page_load()
    # The worker starts only now (``redis`` was flushed before the click, not after): the
    # page showed the job waiting, so only its own script can bring the result.
    request.getfixturevalue("worker_process")
    download_url = meeting.wait_for_document_ready(timeout=90)
    assert meeting.was_reloaded(), "the page showed the result without reloading itself?"
    assert "Terminé" in meeting.document_status()
    assert "Word (version 1)" in meeting.document_status()  # the session's first agenda

    headers, body = meeting.download(download_url)
    assert headers["Content-Disposition"].startswith("attachment")
    document = Document(io.BytesIO(body))
    cells = [c.text for t in document.tables for r in t.rows for c in r.cells]
    for sheet in world["sheets"]:
        assert any(sheet.reference in c and sheet.beneficiary.pseudonym in c for c in cells)
    assert meeting.console_errors() == []


def test_a_wrong_password_shows_the_french_error_and_no_script_or_csp_error(
        browser, live_server, accounts):
    login = LoginPage(browser, live_server).open()
    login.login("facilitator@test.invalid", "not-the-password-93")
    assert login.path == "/connexion"
    assert login.heading == "Connexion"
    assert login.error_message() == "Adresse e-mail ou mot de passe incorrect."
    assert login.menu_entries() == []  # still anonymous
    assert login.console_errors(expected=(  # the refused login is answered with a 401
        "/connexion - Failed to load resource: the server responded with a status of 401",
    )) == []


def test_an_admin_creates_an_account_and_sees_its_one_time_password_once(
        browser, live_server, accounts):
    home = LoginPage(browser, live_server).open().login("admin@test.invalid", PASSWORD)
    users = home.open_accounts_from_menu()
    assert users.heading == "Comptes"
    shown = users.create_account(email="nouvelle.animatrice@test.invalid",
                                 full_name="Nouvelle Animatrice",
                                 role="Chargé·e d'animation territoriale",
                                 circonscriptions=("C01 – Saint-Denis",))
    assert shown.heading == "Mot de passe provisoire"
    password = shown.password
    assert len(password) >= 12
    users = shown.back_to_accounts()
    assert any("nouvelle.animatrice@test.invalid" in row for row in users.account_rows())
    assert password not in browser.page_source  # shown once, on its page only

    # The new colleague logs in with it and must choose a password of her own first.
    login = users.log_out()
    landing = login.login("nouvelle.animatrice@test.invalid", password)
    assert landing.path == "/mot-de-passe"
    assert landing.console_errors() == []


def test_the_session_page_renders_in_a_screenshot(browser, live_server, world, tmp_path):
    LoginPage(browser, live_server).open().login("facilitator@test.invalid", PASSWORD)
    page = MeetingPage(browser, live_server)
    page.visit(f"/seances/{world['meeting'].id}")
    assert page.agenda_points() == [
        "Présentation de l'ALI",
        *(f"{s.reference} – {s.beneficiary.pseudonym}" for s in world["sheets"])]
    shot = page.save_screenshot(tmp_path / "seance.png")
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert shot.stat().st_size > 10_000
    assert page.console_errors() == []


def test_an_anonymous_visitor_is_sent_to_the_login_page(browser, live_server, world):
    page = Page(browser, live_server)
    page.visit(f"/seances/{world['meeting'].id}")
    assert page.path.startswith("/connexion")
    assert "Connectez-vous pour accéder à cette page." in page.flash_messages()


def test_a_referent_replaces_and_dismisses_findings_in_the_sheet_form(
        browser, live_server, world, db_session, vault):
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(30),
                       author_id=world["users"]["referent"].id)
    db_session.commit()
    LoginPage(browser, live_server).open().login("referent@test.invalid", PASSWORD)
    form = SheetEditPage(browser, live_server).open(sheet.id)
    form.write("Parcours et situation (résumé)",
               "Son fils Moussa est gardé par sa tante. Joignable au 06 12 48 73 95.")
    form.save_draft()
    assert form.highlighted() == [("nom d'une personne", "Moussa"),
                                  ("numéro de téléphone", "06 12 48 73 95")]
    form.accept_replacement("[téléphone]")
    assert form.text_of("Parcours et situation (résumé)").endswith("au [téléphone].")
    form.dismiss_first_finding()
    assert form.highlighted() == []
    assert form.console_errors() == []


def test_a_referent_who_switches_tabs_mid_sentence_finds_the_text_saved(
        browser, live_server, world, db_session, vault):
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(31),
                       author_id=world["users"]["referent"].id)
    db_session.commit()
    LoginPage(browser, live_server).open().login("referent@test.invalid", PASSWORD)
    form = SheetEditPage(browser, live_server).open(sheet.id)
    form.write("Parcours et situation (résumé)", "Texte tapé, puis un autre onglet ouvert.")
    form.switch_to_another_tab()
    assert form.autosave_status(once_it_starts="Enregistré à ")
    db_session.expire_all()
    stored = read_values(vault, db_session.get(Sheet, sheet.id), purpose="test")
    db_session.commit()
    assert stored["parcours"] == "Texte tapé, puis un autre onglet ouvert."
    assert form.console_errors() == []


def test_a_double_click_adds_one_partnership_point(browser, live_server, world):
    home = LoginPage(browser, live_server).open().login("facilitator@test.invalid", PASSWORD)
    meeting = home.open_meetings_from_menu().open_meeting(MEETING_DATE)
    meeting.add_partnership_point_clicking_twice("Présentation du PLIE")
    assert "Point ajouté à l'ordre du jour." in meeting.flash_messages()
    assert meeting.agenda_points().count("Présentation du PLIE") == 1
    assert meeting.console_errors() == []


def test_an_upload_over_the_limit_gets_the_french_page_not_a_reset_connection(live_server):
    """gunicorn, as in production: a body over 2 MiB is refused (413), and the answer reaches
    the client, which was still sending (a server that answers and closes without reading
    the body makes the browser show "connection reset")."""
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(live_server)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    body = b"x" * (8 * 2**20)
    connection.request("POST", "/connexion", body=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    assert response.status == 413
    assert "Envoi trop volumineux" in response.read().decode()
    connection.close()
