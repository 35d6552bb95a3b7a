"""ICAG rules at the domain level: when a step may be recorded, and what it refuses."""

from datetime import date, timedelta

import pytest

from shared.demo import demo_values
from shared.domain import icag
from shared.domain.meetings import inscribe_sheet
from shared.errors import InvalidInputError, InvalidTransitionError
from tests.factories import canary_identity, make_sheet


def _item(db_session, vault, world, kind, n=50, same_person_confirmed=False):
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(n),
                       status="recevable", values={**demo_values(0),
                                                   "position_personne": "accord"})
    return inscribe_sheet(db_session, vault, world["meeting"], sheet, "16:00", part="icag",
                          icag_kind=kind, same_person_confirmed=same_person_confirmed)


def _enter(db_session, vault, world, item, **changes):
    values = {"started_on": world["meeting"].day, "diagnostic_on": date.today(),
              "diagnostic_structure_id": world["structures"]["ali"].id,
              "categories": ["logement"]} | changes
    return icag.record_entry(db_session, vault, world["meeting"], item.id, **values)


def test_steps_wait_for_the_session_to_be_held(world, db_session, vault):
    item = _item(db_session, vault, world, "entree")
    with pytest.raises(InvalidTransitionError, match="une fois la séance tenue"):
        _enter(db_session, vault, world, item)


def test_an_entry_refuses_a_diagnostic_after_the_start_and_a_second_running_ag(
        world, db_session, vault):
    world["meeting"].state = "tenue"
    item = _item(db_session, vault, world, "entree")
    with pytest.raises(InvalidInputError, match="précède l'entrée"):
        _enter(db_session, vault, world, item,
               diagnostic_on=world["meeting"].day - timedelta(days=1),
               started_on=world["meeting"].day - timedelta(days=2))
    with pytest.raises(InvalidInputError, match="moins de six mois"):
        _enter(db_session, vault, world, item,
               started_on=world["meeting"].day + timedelta(days=400))
    _enter(db_session, vault, world, item)
    again = _item(db_session, vault, world, "entree", n=50,  # the same person, a new sheet
                  same_person_confirmed=True)
    with pytest.raises(InvalidInputError, match="déjà en cours"):
        _enter(db_session, vault, world, again)


def test_a_renewal_or_exit_needs_a_running_ag_and_the_right_kind(world, db_session, vault):
    world["meeting"].state = "tenue"
    renewal = _item(db_session, vault, world, "renouvellement")
    with pytest.raises(InvalidInputError, match="Aucun accompagnement global en cours"):
        icag.record_renewal(db_session, vault, world["meeting"], renewal.id)
    with pytest.raises(InvalidInputError, match="pas comme « Sortie »"):
        icag.record_exit(db_session, vault, world["meeting"], renewal.id,
                         ended_on=world["meeting"].day, reason="terme")
