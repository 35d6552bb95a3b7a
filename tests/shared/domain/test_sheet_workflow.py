"""The sheet lifecycle as the history records it."""

from shared.domain.sheet_workflow import transition
from tests.factories import canary_identity, make_sheet


def test_each_history_event_records_the_state_it_left_and_the_state_it_reached(world,
                                                                                db_session,
                                                                                vault):
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(5),
                       status="recevable")
    transition(db_session, vault, sheet, "withdraw", actor_id=None, reason="Test.")
    assert [(e.action, e.from_status, e.to_status) for e in sheet.events] == [
        ("submit", "brouillon", "soumise"), ("accept", "soumise", "recevable"),
        ("withdraw", "recevable", "retiree")]
