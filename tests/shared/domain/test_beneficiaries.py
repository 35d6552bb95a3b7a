"""A person the structure already knows: a new sheet never loses what the structure holds."""

import dataclasses

import pytest
from sqlalchemy import select

from shared.domain.beneficiaries import (
    Identity,
    identity_record,
    resolve_identity_differences,
    stored_identity,
)
from shared.domain.sheets import choose_identity_values, start_sheet
from shared.errors import InvalidInputError
from shared.models import AuditEvent
from tests.factories import canary_identity


def _stored(db_session, vault, sheet) -> dict[str, str]:
    record = identity_record(db_session, sheet.beneficiary, sheet.structure_id)
    return stored_identity(vault, record, "test")


@pytest.fixture
def known(world, db_session, vault):
    """A person the SSD filed with every identity field."""
    identity = canary_identity(6)
    first = start_sheet(db_session, vault, structure=world["structures"]["ssd"],
                        author_id=None, identity=identity).sheet
    return identity, first


def test_a_new_sheet_typed_with_name_and_birth_date_keeps_every_stored_value(
        world, db_session, vault, known):
    identity, first = known
    before = _stored(db_session, vault, first)
    started = start_sheet(db_session, vault, structure=world["structures"]["ssd"],
                          author_id=None, identity=Identity(
                              nom=identity.nom, prenom=identity.prenom,
                              date_naissance=identity.date_naissance))
    assert started.sheet.beneficiary_id == first.beneficiary_id
    assert _stored(db_session, vault, first) == before
    assert started.differences == []
    assert before["numero_caf"] == identity.numero_caf


def test_typed_values_fill_empty_fields_and_differences_wait_for_the_referent(
        world, db_session, vault):
    structure = world["structures"]["ssd"]
    short = Identity(nom="Zyxdupont", prenom="Qwertine", date_naissance="1980-02-03",
                     telephone="0612345678")
    first = start_sheet(db_session, vault, structure=structure, author_id=None,
                        identity=short).sheet
    typed = dataclasses.replace(short, telephone="0798765432", numero_caf="1234567")
    started = start_sheet(db_session, vault, structure=structure, author_id=None,
                          identity=typed)
    stored = _stored(db_session, vault, first)
    assert stored["telephone"] == "0612345678"  # kept until the referent chooses
    assert stored["numero_caf"] == "1234567"  # was empty: filled in
    assert started.differences == ["telephone"]


def test_the_referents_choice_updates_or_keeps_each_field_and_is_audited_by_name(
        world, db_session, vault, known):
    identity, first = known
    typed = {"telephone": "0798765432", "email": "autre@exemple.invalid", "adresse": ""}
    resolve_identity_differences(db_session, vault, first.beneficiary, first.structure_id,
                                 typed, {"telephone", "adresse"})
    stored = _stored(db_session, vault, first)
    assert stored["telephone"] == "0798765432"
    assert stored["email"] == identity.email  # kept
    assert stored["adresse"] == identity.adresse  # an empty typed value never erases
    event = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "identity_differences_resolved")).one()
    assert set(event.fields.split(",")) == {"updated:telephone", "kept:email",
                                            "updated:adresse"}
    assert "0798765432" not in event.fields and "exemple" not in event.fields


def test_a_choice_on_an_unknown_field_is_refused(world, db_session, vault, known):
    _, first = known
    with pytest.raises(InvalidInputError):
        resolve_identity_differences(db_session, vault, first.beneficiary,
                                     first.structure_id, {"pseudonym": "x"}, {"pseudonym"})


def test_a_stored_street_never_gets_another_addresss_postcode(world, db_session, vault):
    # Outside review: a stored street with no postcode, and another address typed, made an
    # address that never existed.
    structures = world["structures"]
    person = canary_identity(61)
    first = start_sheet(db_session, vault, structure=structures["ssd"], author_id=None,
                        identity=dataclasses.replace(person, code_postal="", commune=""))
    moved = dataclasses.replace(person, adresse="8 avenue Neuve", code_postal="93100",
                                commune="Montreuil")
    second = start_sheet(db_session, vault, structure=structures["ssd"], author_id=None,
                         identity=moved)
    assert second.sheet.beneficiary_id == first.sheet.beneficiary_id
    stored = _stored(db_session, vault, second.sheet)
    assert (stored["adresse"], stored["code_postal"], stored["commune"]) == (
        person.adresse, "", "")
    assert {"adresse", "code_postal", "commune"} <= set(second.differences)


def test_the_identity_choice_is_refused_once_the_sheet_cannot_be_edited(
        world, db_session, vault, known):
    # Outside review: the choice page could rewrite an inscribed sheet's identity.
    identity, first = known
    first.status = "inscrite"
    with pytest.raises(InvalidInputError, match="plus modifiable"):
        choose_identity_values(db_session, vault, first, {"telephone": "0600000000"},
                               {"telephone"})
    assert _stored(db_session, vault, first)["telephone"] == identity.telephone
