"""The agenda of a session: what may be inscribed on it (issue 15, bugs 4, 5 and 7)."""

import pytest
from sqlalchemy import select

from shared.demo import demo_values
from shared.domain.meetings import (
    SamePersonOnAgendaError,
    adjourn,
    candidate_sheets,
    inscribe_sheet,
)
from shared.errors import InvalidInput
from shared.models import AgendaItem, AuditEvent
from tests.factories import canary_identity, make_sheet


def test_a_sheet_adjourned_from_a_session_is_not_offered_again_on_it(world, db_session, vault):
    meeting = world["meeting"]
    item = next(i for i in meeting.items if i.sheet_id)
    adjourn(db_session, vault, meeting, item.id, "Diagnostic à compléter.")
    assert item.sheet not in candidate_sheets(db_session, meeting)
    with pytest.raises(InvalidInput, match="ajournée de cette séance"):
        inscribe_sheet(db_session, vault, meeting, item.sheet, "16:00")
    assert item.sheet.status == "ajournee"
    assert len([i for i in meeting.items if i.sheet_id == item.sheet_id]) == 1


def test_an_ag_entry_is_refused_for_a_person_in_disagreement(world, db_session, vault):
    meeting = world["meeting"]
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(20),
                       status="recevable",
                       values=demo_values(0) | {"position_personne": "desaccord"})
    with pytest.raises(InvalidInput, match="désaccord"):
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
