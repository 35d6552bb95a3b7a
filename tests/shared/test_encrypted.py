"""shared/encrypted.py and the beneficiary domain: sealed columns, audited opening that fails
closed, tamper detection in the database, the worker's blindness to identity, duplicates."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, text, update
from sqlalchemy.exc import DatabaseError

from shared.crypto import CryptoError, IntegrityError, KeyNotFoundError, KeyRing
from shared.domain import audit, beneficiaries
from shared.domain.beneficiaries import Identity, create_beneficiary, find_duplicates
from shared.domain.sheets import write_values
from shared.encrypted import Vault
from shared.models import AuditEvent, IdentityRecord, RecordKey, Sheet
from shared.protected import IDENTITY_FIELDS
from tests.factories import canary_identity, canary_values, reference_data

WORKER_CHAINS = ("content", "audit", "jobs")
SITUATION = "Parcours social long, synthétique."
QUESTION = "Réorientation ?"


def all_values(identity: Identity) -> list[str]:
    return [*canary_values(identity), identity.date_naissance]


def audit_rows(session) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def fresh_vault(session, keyring) -> Vault:
    """A new unit of work: no data key cached from the writes of the test itself."""
    session.flush()
    session.expire_all()
    return Vault(session, keyring, audit.CLI)


@pytest.fixture
def people(db_session, vault):
    identities = [canary_identity(n) for n in range(2)]
    created = [create_beneficiary(db_session, vault, i) for i in identities]
    db_session.commit()
    return list(zip(created, identities, strict=True))


@pytest.fixture
def sheet(db_session, vault, people):
    _, _, structures = reference_data(db_session)
    beneficiary = people[0][0].beneficiary
    created = Sheet(reference="ICL-C01-2026-0001", beneficiary=beneficiary,
                    structure_id=structures["ssd"].id,
                    circonscription_id=structures["ssd"].circonscription_id, status="recevable")
    db_session.add(created)
    db_session.flush()
    write_values(vault, created, {"parcours": SITUATION, "question": QUESTION})
    db_session.commit()
    return created


@pytest.fixture
def decryptions(monkeypatch):
    """Counts calls of the field decryption primitive used by the vault."""
    import shared.encrypted as encrypted

    calls = []
    real = encrypted.open_field

    def spy(*args, **kwargs):
        calls.append(kwargs.get("field"))
        return real(*args, **kwargs)

    monkeypatch.setattr(encrypted, "open_field", spy)
    return calls


# -- round trip --------------------------------------------------------------------------


def test_a_sealed_identity_opens_to_the_values_typed(db_session, keyring, people):
    vault = fresh_vault(db_session, keyring)
    beneficiaries_ = [b for b, _ in people]
    opened = vault.open_many(beneficiaries_, IDENTITY_FIELDS, purpose="test")
    for values, (_, identity) in zip(opened, people, strict=True):
        assert {k: v.reveal() for k, v in values.items()} == asdict(identity)


def test_the_database_holds_only_ciphertext_of_identity_fields(db_session, people):
    rows = db_session.execute(text("SELECT * FROM identity_records ORDER BY id")).mappings().all()
    stored = " ".join(str(v) for row in rows for v in row.values())
    assert len(rows) == 2
    for _, identity in people:
        for value in all_values(identity):
            assert value not in stored
    for row, (_, identity) in zip(rows, people, strict=True):
        assert row["nom"] and row["nom"] != identity.nom


def test_two_records_with_the_same_value_get_different_ciphertexts(db_session, keyring, vault):
    first = create_beneficiary(db_session, vault, canary_identity(3))
    second = create_beneficiary(db_session, vault, canary_identity(3))
    assert first.commune != second.commune  # own DEK, nonce and associated data
    opened = fresh_vault(db_session, keyring).open_many([first, second], ["commune"],
                                                        purpose="test")
    assert [v["commune"].reveal() for v in opened] == ["Saint-Denis", "Saint-Denis"]


def test_each_record_gets_its_own_wrapped_data_key(db_session, people):
    keys = db_session.scalars(select(RecordKey).where(RecordKey.chain == "identity")).all()
    assert {k.record_uuid for k in keys} == {b.beneficiary.uuid for b, _ in people}
    assert len({bytes(k.wrapped_dek) for k in keys}) == 2


# -- audit before decryption -------------------------------------------------------------


def test_opening_identity_fields_without_a_purpose_raises_and_decrypts_nothing(
        db_session, keyring, people, decryptions):
    vault = fresh_vault(db_session, keyring)
    with pytest.raises(ValueError, match="purpose"):
        vault.open_many([people[0][0]], ["nom"])
    with pytest.raises(ValueError, match="purpose"):
        vault.open(people[0][0], "prenom", purpose="")
    assert decryptions == []
    assert audit_rows(db_session) == []


def test_opening_identity_fields_writes_exactly_one_audit_event_naming_ids_fields_and_purpose(
        db_session, keyring, people):
    vault = fresh_vault(db_session, keyring)
    objs = [b for b, _ in people]
    vault.open_many(objs, ["nom", "telephone"], purpose="test")
    rows = audit_rows(db_session)
    assert len(rows) == 1
    event = rows[0]
    assert event.action == "decrypt"
    assert event.object_type == "identity_records"
    assert event.object_ids == ",".join(str(b.id) for b in objs)
    assert event.fields == "nom,telephone"
    assert event.purpose == "test"
    assert (event.actor_id, event.actor_label) == (None, "cli")
    assert audit.verify_chain(db_session, keyring).ok


def test_no_audit_column_holds_a_decrypted_value(db_session, keyring, people):
    vault = fresh_vault(db_session, keyring)
    vault.open_many([b for b, _ in people], IDENTITY_FIELDS, purpose="test")
    (event,) = audit_rows(db_session)
    columns = [str(getattr(event, c.key)) for c in AuditEvent.__table__.columns]
    for _, identity in people:
        for value in all_values(identity):
            assert not [c for c in columns if value in c]


def test_opening_situational_content_needs_no_purpose_and_is_not_audited(
        db_session, keyring, sheet):
    vault = fresh_vault(db_session, keyring)
    opened = json.loads(vault.open_many([sheet], ["situation_data"])[0]["situation_data"]
                        .reveal())
    assert opened["parcours"] == SITUATION
    assert opened["question"] == QUESTION
    assert opened["proposition"] == ""
    assert audit_rows(db_session) == []


def test_if_the_audit_row_cannot_be_inserted_nothing_is_decrypted(
        db_session, keyring, people, decryptions):
    def broken(*_args):
        raise RuntimeError("audit store unavailable")

    vault = fresh_vault(db_session, keyring)
    result = None
    sa_event.listen(AuditEvent, "before_insert", broken)
    try:
        with pytest.raises(RuntimeError, match="audit store unavailable"):
            result = vault.open_many([people[0][0]], ["nom", "prenom"], purpose="test")
    finally:
        sa_event.remove(AuditEvent, "before_insert", broken)
    assert result is None
    assert decryptions == []


def test_a_keyring_without_the_audit_chain_cannot_decrypt_identity(
        db_session, keyring, settings, people, decryptions):
    no_audit = KeyRing.load(settings.keyring_path, ("identity", "content", "index"))
    vault = Vault(db_session, no_audit, audit.CLI)
    with pytest.raises(KeyNotFoundError):
        vault.open(people[0][0], "nom", purpose="test")
    assert decryptions == []
    assert audit_rows(db_session) == []


def test_if_the_audit_row_is_refused_by_the_database_nothing_is_decrypted(
        db_session, keyring, people, decryptions):
    vault = fresh_vault(db_session, keyring)
    vault.open(people[0][0], "nom", purpose="first")
    db_session.commit()
    # The audit table is gone for this transaction (a write first: SQLite then keeps the
    # rename in the transaction, which the rollback undoes)
    db_session.execute(update(AuditEvent).values(purpose=AuditEvent.purpose))
    db_session.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))
    decryptions.clear()
    with pytest.raises(DatabaseError):
        vault.open(people[1][0], "nom", purpose="second")
    assert decryptions == []
    db_session.rollback()
    assert [e.purpose for e in audit_rows(db_session)] == ["first"]


# -- tampering in the database -----------------------------------------------------------


def test_swapping_the_nom_ciphertexts_of_two_beneficiaries_fails_integrity(
        db_session, keyring, people):
    (a, _), (b, identity_b) = people
    a_nom, b_nom = a.nom, b.nom
    db_session.execute(update(IdentityRecord).where(IdentityRecord.id == a.id).values(nom=b_nom))
    db_session.execute(update(IdentityRecord).where(IdentityRecord.id == b.id).values(nom=a_nom))
    vault = fresh_vault(db_session, keyring)
    for victim in (a, b):
        with pytest.raises(IntegrityError) as info:
            vault.open(victim, "nom", purpose="test")
        assert identity_b.nom not in str(info.value)
    # the untouched fields still open: the failure is the swap, not the record
    assert vault.open(a, "prenom", purpose="test").reveal() == people[0][1].prenom
    assert vault.verify(a, "nom") is False
    assert vault.verify(a, "prenom") is True


def test_moving_a_ciphertext_to_another_field_of_the_same_record_fails_integrity(
        db_session, keyring, people):
    (a, _), _ = people
    db_session.execute(update(IdentityRecord).where(IdentityRecord.id == a.id).values(prenom=a.nom))
    vault = fresh_vault(db_session, keyring)
    with pytest.raises(IntegrityError):
        vault.open(a, "prenom", purpose="test")


def test_swapping_the_wrapped_data_keys_of_two_beneficiaries_fails_integrity(
        db_session, keyring, people):
    (a, _), (b, _) = people
    key_a = db_session.get(RecordKey, (a.beneficiary.uuid, "identity", 1))
    key_b = db_session.get(RecordKey, (b.beneficiary.uuid, "identity", 1))
    key_a.wrapped_dek, key_b.wrapped_dek = bytes(key_b.wrapped_dek), bytes(key_a.wrapped_dek)
    vault = fresh_vault(db_session, keyring)
    for victim in (a, b):
        with pytest.raises(IntegrityError):
            vault.open(victim, "nom", purpose="test")
    with pytest.raises(IntegrityError):
        vault.open_many([a, b], ["commune"], purpose="test")


def test_a_missing_wrapped_data_key_fails_integrity(db_session, keyring, people):
    (a, _), _ = people
    db_session.delete(db_session.get(RecordKey, (a.beneficiary.uuid, "identity", 1)))
    vault = fresh_vault(db_session, keyring)
    with pytest.raises(IntegrityError):
        vault.open(a, "nom", purpose="test")


# -- the worker never sees identity ------------------------------------------------------


def test_a_worker_vault_opens_sheet_content_but_never_identity(
        db_session, keyring, settings, people, sheet):
    worker_ring = KeyRing.load(settings.keyring_path, WORKER_CHAINS)
    worker = Vault(db_session, worker_ring, audit.WORKER)
    db_session.expire_all()
    opened = json.loads(worker.open(sheet, "situation_data").reveal())
    assert (opened["parcours"], opened["question"]) == (SITUATION, QUESTION)
    identity = people[0][1]
    for field in ("nom", "prenom", "date_naissance"):
        with pytest.raises(CryptoError) as info:
            worker.open(people[0][0], field, purpose="test")
        assert identity.nom not in str(info.value)
    with pytest.raises(KeyNotFoundError):
        find_duplicates(db_session, worker, identity)  # no blind-index secret either
    with pytest.raises(KeyNotFoundError):
        create_beneficiary(db_session, worker, canary_identity(5))


# -- duplicates --------------------------------------------------------------------------

PERSON = Identity(nom="Xéphorin-Dûval", prenom="Éloïse", date_naissance="1980-02-29")
PERSON_RETYPED = Identity(nom="XEPHORIN  DUVAL", prenom="eloise", date_naissance="1980-02-29")
OTHER_PERSON = Identity(nom="Quabrelot", prenom="Zénaïde", date_naissance="1975-11-03")


def test_the_same_person_typed_with_other_accents_and_case_is_found(db_session, vault):
    person = create_beneficiary(db_session, vault, PERSON)
    create_beneficiary(db_session, vault, OTHER_PERSON)
    assert find_duplicates(db_session, vault, PERSON_RETYPED) == [person]
    assert find_duplicates(db_session, vault, PERSON) == [person]


def test_a_person_born_another_day_is_not_a_duplicate(db_session, vault):
    create_beneficiary(db_session, vault, PERSON)
    other_day = Identity(nom=PERSON.nom, prenom=PERSON.prenom, date_naissance="1980-03-01")
    assert find_duplicates(db_session, vault, other_day) == []


def test_a_caf_number_alone_never_attaches_a_sheet_to_someone_else(db_session, vault):
    # A mistyped name with the right number, or the right number typed for a stranger:
    # the number makes a candidate, only name and birth date confirm it.
    create_beneficiary(db_session, vault, canary_identity(4))
    typed = Identity(nom="Autrenom", prenom="Autreprenom", date_naissance="1990-01-01",
                     numero_caf=" ".join(canary_identity(4).numero_caf))
    assert find_duplicates(db_session, vault, typed) == []
    assert audit_rows(db_session)  # the candidate was decrypted to be ruled out


def test_a_different_person_sharing_a_blind_index_bucket_is_not_confirmed(
        db_session, vault, monkeypatch):
    monkeypatch.setattr(beneficiaries, "blind_index", lambda *args, **kwargs: 42)
    person = create_beneficiary(db_session, vault, PERSON)
    other = create_beneficiary(db_session, vault, OTHER_PERSON)
    assert person.idx_name_birth == other.idx_name_birth == 42  # one shared bucket

    assert find_duplicates(db_session, vault, PERSON_RETYPED) == [person]
    found = find_duplicates(db_session, vault, Identity(nom="Nobody", prenom="Here",
                                                        date_naissance="2001-01-01"))
    assert found == []
    # both bucket-mates were candidates and were decrypted to be ruled out
    rows = audit_rows(db_session)
    assert len(rows) == 2
    for row in rows:
        assert sorted(row.object_ids.split(","), key=int) == [str(person.id), str(other.id)]


def test_a_dedup_decryption_is_audited_with_purpose_dedup(db_session, vault, keyring):
    person = create_beneficiary(db_session, vault, PERSON)
    assert audit_rows(db_session) == []
    find_duplicates(db_session, vault, PERSON_RETYPED)
    rows = audit_rows(db_session)
    assert len(rows) == 1
    assert rows[0].action == "decrypt"
    assert rows[0].purpose == "dedup"
    assert rows[0].object_type == "identity_records"
    assert rows[0].object_ids == str(person.id)
    assert rows[0].fields == "nom,prenom,date_naissance"
    assert audit.verify_chain(db_session, keyring).ok


def test_a_search_without_candidates_decrypts_nothing_and_audits_nothing(
        db_session, vault, decryptions, monkeypatch):
    monkeypatch.setattr(beneficiaries, "blind_index", lambda *args, **kwargs: 1)
    create_beneficiary(db_session, vault, PERSON)
    monkeypatch.setattr(beneficiaries, "blind_index", lambda *args, **kwargs: 2)
    assert find_duplicates(db_session, vault, OTHER_PERSON) == []
    assert decryptions == []
    assert audit_rows(db_session) == []
