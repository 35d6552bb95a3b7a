"""The lists of sheets: filters, sort orders and pages, and a list that says how many rows it
holds (issue 22: it used to stop at 50 without saying so)."""

from __future__ import annotations

import html
from datetime import timedelta

from shared.db import utc_to_paris, utcnow
from shared.domain.sheet_lists import SheetFilters, sheet_page
from shared.domain.sheets import facilitator_sheets_query, referent_sheets_query
from tests.factories import canary_identity, make_sheet
from tests.helpers import client_as


def test_pages_filters_and_sort_orders(db_session, vault, world):
    referent, facilitator = world["users"]["referent"], world["users"]["facilitator"]
    ssd = world["structures"]["ssd"]
    mine = [make_sheet(db_session, vault, ssd, canary_identity(20 + n), author_id=referent.id,
                       status="soumise" if n == 3 else "brouillon") for n in range(4)]
    db_session.commit()
    base = referent_sheets_query(referent)

    first = sheet_page(db_session, base, SheetFilters(), 1, page_size=3)
    assert (first.total, first.pages, len(first.sheets)) == (4, 2, 3)
    last = sheet_page(db_session, base, SheetFilters(), 9, page_size=3)  # past the end
    assert last.page == 2 and len(last.sheets) == 1
    assert {s.id for s in first.sheets + last.sheets} == {s.id for s in mine}

    by_reference = sheet_page(db_session, base, SheetFilters(sort="reference")).sheets
    assert [s.reference for s in by_reference] == sorted(s.reference for s in mine)
    assert sheet_page(db_session, base, SheetFilters(state="brouillon")).total == 3
    assert sheet_page(db_session, base, SheetFilters(state="brouillon")).counts == {
        "brouillon": 3, "soumise": 1}  # the counts stay those of the whole list
    assert sheet_page(db_session, base, SheetFilters(search=mine[0].reference[-4:])
                      ).sheets == [mine[0]]

    today = utc_to_paris(utcnow()).date()
    assert sheet_page(db_session, base, SheetFilters(since=today, until=today)).total == 4
    assert sheet_page(db_session, base, SheetFilters(since=today + timedelta(days=1))).total == 0
    assert sheet_page(db_session, base, SheetFilters(until=today - timedelta(days=1))).total == 0

    # The facilitator's list, by session: the world's two inscribed sheets
    inbox = facilitator_sheets_query(facilitator)
    on_agenda = sheet_page(db_session, inbox, SheetFilters(meeting_id=world["meeting"].id))
    assert {s.id for s in on_agenda.sheets} == {s.id for s in world["sheets"]}
    assert [m.id for m in on_agenda.meetings] == [world["meeting"].id]
    assert sheet_page(db_session, inbox, SheetFilters(structure_id=ssd.id)).total == 3


def test_the_list_page_says_how_many_and_names_a_wrong_date(app, world, db_session, vault):
    referent = world["users"]["referent"]
    for n in range(2):
        make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(30 + n),
                   author_id=referent.id)
    db_session.commit()
    client = client_as(app, "referent")
    body = html.unescape(client.get("/fiches/?tri=reference&page=x").get_data(as_text=True))
    assert "2 fiche(s)." in body and "Page 1 sur" not in body
    body = html.unescape(client.get("/fiches/?du=31/02/2026&etat=brouillon")
                         .get_data(as_text=True))
    assert "Date non reconnue : saisissez-la sous la forme jj/mm/aaaa." in body
    assert "2 fiche(s)." in body  # the other filters still apply
    body = html.unescape(client.get("/fiches/?au=01/01/2020").get_data(as_text=True))
    assert "0 fiche(s)." in body and "Aucune fiche ne correspond à ces critères." in body
