"""The agenda of a session: what may be inscribed on it (issue 15, bugs 4, 5 and 7)."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from shared.demo import demo_values
from shared.domain.meetings import (
    SamePersonOnAgendaError,
    adjourn,
    candidate_sheets,
    create_meeting,
    inscribe_sheet,
    postpone,
    remove_item,
)
from shared.errors import InvalidInputError
from shared.models import AgendaItem, AuditEvent
from tests.factories import canary_identity, make_sheet
from tests.helpers import purge


def test_a_sheet_adjourned_from_a_session_is_not_offered_again_on_it(world, db_session, vault):
    meeting = world["meeting"]
    item = next(i for i in meeting.items if i.sheet_id)
    adjourn(db_session, vault, meeting, item.id, "Diagnostic à compléter.")
    assert item.sheet not in candidate_sheets(db_session, meeting)
    with pytest.raises(InvalidInputError, match="ajournée de cette séance"):
        inscribe_sheet(db_session, vault, meeting, item.sheet, "16:00")
    assert item.sheet.status == "ajournee"
    assert len([i for i in meeting.items if i.sheet_id == item.sheet_id]) == 1


def test_an_ag_entry_is_refused_for_a_person_in_disagreement(world, db_session, vault):
    meeting = world["meeting"]
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(20),
                       status="recevable",
                       values=demo_values(0) | {"position_personne": "desaccord"})
    with pytest.raises(InvalidInputError, match="désaccord"):
        inscribe_sheet(db_session, vault, meeting, sheet, "16:00", part="icag",
                       icag_kind="entree")
    assert sheet.status == "recevable"
    # Her situation may still be studied.
    inscribe_sheet(db_session, vault, meeting, sheet, "16:00")


def test_a_second_sheet_of_the_same_person_needs_an_explicit_confirmation(world, db_session,
                                                                          vault):
    meeting = world["meeting"]
    identity = world["identities"][0]
    second = make_sheet(db_session, vault, world["structures"]["ali"], identity,
                        status="recevable")
    assert second.beneficiary_id == world["sheets"][0].beneficiary_id
    with pytest.raises(SamePersonOnAgendaError) as warned:
        inscribe_sheet(db_session, vault, meeting, second, "16:00")
    assert world["sheets"][0].reference in warned.value.message
    assert second.status == "recevable"
    item = inscribe_sheet(db_session, vault, meeting, second, "16:00",
                          same_person_confirmed=True)
    event = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "meeting_same_person_inscribed")).one()
    assert event.fields == f"{world['sheets'][0].id},{second.id}"
    assert db_session.get(AgendaItem, item.id).sheet_id == second.id


def test_a_purged_persons_sheet_is_neither_offered_nor_inscribed(world, db_session, vault):
    """Found by the simulated year: the purge shreds a screened sheet's content, its recorded
    position « en désaccord » included, and the empty sheet was still offered, then
    inscribed for an AG entry."""
    meeting = world["meeting"]
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(21),
                       status="recevable",
                       values=demo_values(0) | {"position_personne": "desaccord"})
    purge(db_session, vault, sheet)
    assert sheet.status == "recevable"  # its metadata stays, for the statistics
    assert sheet not in candidate_sheets(db_session, meeting)
    for part, kind in (("icag", "entree"), ("situation", "")):
        with pytest.raises(InvalidInputError, match="durée de conservation"):
            inscribe_sheet(db_session, vault, meeting, sheet, "16:00", part=part,
                           icag_kind=kind)
    assert sheet.status == "recevable"


def test_a_session_postponed_leaves_a_purged_persons_sheet_adjourned(world, db_session, vault):
    """The sheets pending on a postponed session go to its replacement, except one whose
    person was purged meanwhile: the postponement is not refused because of it."""
    meeting = world["meeting"]
    purged, kept = world["sheets"]
    purge(db_session, vault, purged)
    replacement = postpone(db_session, vault, meeting, meeting.starts_at + timedelta(days=14),
                           "Salle indisponible.")
    assert [i.sheet_id for i in replacement.items if i.sheet_id] == [kept.id]
    assert (purged.status, kept.status) == ("ajournee", "inscrite")


def test_an_adjourned_item_stays_on_the_agenda_it_was_adjourned_from(world, db_session, vault):
    """Removing it moved its sheet, inscribed since on another session, back to « ajournée »
    while its item there waited (that session could no longer finish its avis), and erased
    the adjournment the PV and fiche retour give."""
    meeting = world["meeting"]  # its agenda is still being built
    item = next(i for i in meeting.items if i.sheet_id)
    sheet = item.sheet
    adjourn(db_session, vault, meeting, item.id, "Diagnostic à compléter.")
    later = create_meeting(db_session, world["north"], datetime(2027, 1, 12, 14), "Salle 2")
    inscribe_sheet(db_session, vault, later, sheet, "14:30")
    with pytest.raises(InvalidInputError, match="ajourné"):
        remove_item(db_session, vault, meeting, item.id)
    assert sheet.status == "inscrite"
    assert item in meeting.items and item.outcome == "ajourne"
