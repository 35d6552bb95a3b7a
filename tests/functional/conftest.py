"""Fixtures only functional tests use (the others are in tests/conftest.py; plain helpers in
tests/helpers.py)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from shared.domain import audit
from shared.domain.meetings import ActionInput
from shared.models import AuditEvent
from tests.helpers import give_avis, hold, logged_in


@pytest.fixture
def facilitator(app, world):
    """The facilitator of the world's first circonscription, logged in."""
    return logged_in(app, "facilitator@test.invalid")


@pytest.fixture
def examined(world, db_session, vault):
    """The session held, an avis on the first situation that needs the Département."""
    meeting, sheet = world["meeting"], world["sheets"][0]
    meeting.starts_at = meeting.starts_at.replace(year=date.today().year - 1)  # already held
    hold(db_session, meeting)
    decision = give_avis(db_session, vault, meeting, sheet, "Poursuivre l'accompagnement.",
                         actions=[ActionInput("Atelier CV", None, None)])
    decision.formal_decision_by = "departement"
    db_session.commit()
    item = next(i for i in meeting.items if i.sheet_id == sheet.id)
    return meeting, sheet, decision, f"/seances/{meeting.id}/points/{item.id}"


@pytest.fixture
def chain(db_session, keyring):
    """Six audit rows written by the CLI, sealed: a chain that verifies."""
    for n in range(6):
        audit.record(db_session, keyring, audit.CLI, "decrypt", object_type="identity_records",
                     object_ids=[n + 1], fields=["nom"], purpose=f"test {n}")
    db_session.commit()
    audit.seal(db_session, keyring)  # what the worker does within seconds
    db_session.commit()
    return list(db_session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
