import pytest

from tests.factories import meeting_with_agenda, reference_data, users_for_every_role


@pytest.fixture
def world(db_session, vault):
    """Two circonscriptions, users of every role, a session of the first with its agenda."""
    north, south, structures = reference_data(db_session)
    accounts = users_for_every_role(db_session, north, south, structures)
    meeting, sheets, identities = meeting_with_agenda(db_session, vault, north, structures)
    db_session.commit()
    return {"north": north, "south": south, "structures": structures, "users": accounts,
            "meeting": meeting, "sheets": sheets, "identities": identities}
