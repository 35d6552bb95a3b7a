"""The facilitator builds an agenda through the real forms (issue 15, bugs 4 and 7)."""

import html
import re

from sqlalchemy import func, select

from shared.models import AgendaItem, AuditEvent
from tests.factories import canary_identity, make_sheet
from tests.helpers import flash_text, logged_in, post


def _offered(page) -> set[int]:
    found = re.search(r'<select id="sheet_id".*?</select>', page.get_data(as_text=True), re.S)
    return {int(v) for v in re.findall(r'value="(\d+)"', found.group(0))} if found else set()


def test_a_sheet_adjourned_from_a_session_is_neither_offered_nor_inscribed_again_on_it(
        app, world, db_session, vault):
    facilitator = logged_in(app, "facilitator@test.invalid")
    meeting = world["meeting"]
    waiting = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(30),
                         status="recevable")
    db_session.commit()
    item = next(i for i in meeting.items if i.sheet_id)
    url = f"/seances/{meeting.id}"
    page = post(facilitator, f"{url}/points/{item.id}/ajourner",
                {"reason": "Diagnostic à compléter.", "target_id": "0"}, url)
    assert "Situation ajournée" in flash_text(page)
    assert _offered(facilitator.get(url)) == {waiting.id}
    page = post(facilitator, f"{url}/inscrire", {"sheet_id": str(item.sheet_id),
                                                 "time_slot": "16:00", "part": "situation"},
                url)
    assert page.status_code == 200  # was HTTP 500 (unique constraint)
    assert "ajournée de cette séance" in html.unescape(flash_text(page))
    assert db_session.scalar(select(func.count()).select_from(AgendaItem).where(
        AgendaItem.sheet_id == item.sheet_id)) == 1


def test_two_sheets_of_one_person_are_flagged_and_need_an_explicit_confirmation(
        app, world, db_session, vault):
    facilitator = logged_in(app, "facilitator@test.invalid")
    meeting = world["meeting"]
    first = world["sheets"][0]
    second = make_sheet(db_session, vault, world["structures"]["ali"], world["identities"][0],
                        status="recevable")
    db_session.commit()
    url = f"/seances/{meeting.id}"
    page = facilitator.get(url)
    assert "(même personne qu’un point inscrit)" in html.unescape(page.get_data(as_text=True))
    form = {"sheet_id": str(second.id), "time_slot": "16:00", "part": "situation"}
    page = post(facilitator, f"{url}/inscrire", form, url)
    message = html.unescape(flash_text(page))
    assert "une autre fiche de la même personne" in message and first.reference in message
    assert db_session.scalar(select(AgendaItem.id).where(
        AgendaItem.sheet_id == second.id)) is None

    page = post(facilitator, f"{url}/inscrire", form | {"same_person_confirmed": "y"}, url)
    assert f"Fiche {second.reference} inscrite." in flash_text(page)
    body = html.unescape(page.get_data(as_text=True))
    assert re.search(rf"Attention : les fiches {first.reference}, {second.reference} "
                     r"concernent la même personne", body)
    assert db_session.scalar(select(AuditEvent.fields).where(
        AuditEvent.action == "meeting_same_person_inscribed")) == f"{first.id},{second.id}"
