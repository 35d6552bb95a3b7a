"""Key rotation in-process: add → promote (gated by live processes) → rotate → retire."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared import heartbeat
from shared.crypto import KeyNotFoundError, KeyRing
from shared.db import make_session_factory, utcnow
from shared.domain import audit, rotation
from shared.domain.beneficiaries import create_beneficiary, find_duplicates
from shared.encrypted import Vault
from shared.errors import InvalidTransitionError
from shared.integrity import check_all
from shared.models import AuditEvent, IdentityRecord, KeyRotation, RecordKey
from tests.factories import canary_identity, reference_data


@pytest.fixture
def ring(tmp_path):
    """A keyring of this test's own: the suite's shared one is never edited."""
    path = tmp_path / "keyring.json"
    KeyRing.create_file(path)
    return path, KeyRing.load(path)


@pytest.fixture
def people(db_session, ring):
    _path, keyring = ring
    vault = Vault(db_session, keyring, audit.CLI)
    _north, _south, structures = reference_data(db_session)
    records = [create_beneficiary(db_session, vault, canary_identity(n), structures["ssd"].id)
               for n in range(30)]
    db_session.commit()
    return records


def on_version(session, chain, version):
    return rotation.rows_by_version(session, chain).get(version, 0)


def actions(session):
    return [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_a_full_rotation_rewraps_every_key_and_retires_the_old_version(
        engine, db_session, ring, people):
    path, keyring = ring
    sessions = make_session_factory(engine)
    version = rotation.add(db_session, path, keyring, "identity", audit.CLI)
    db_session.commit()
    assert version == 2 and keyring.holds("identity", 2)
    assert keyring.primary_version("identity") == 1  # held, not used yet

    rotation.promote(db_session, path, keyring, "identity", 2, audit.CLI)
    db_session.commit()
    assert KeyRing.load(path).primary_version("identity") == 2
    with pytest.raises(InvalidTransitionError, match="still need identity v1"):
        rotation.retire(db_session, path, keyring, "identity", 1, audit.CLI)

    reported = []
    result = rotation.rotate(sessions, keyring, "identity", audit.CLI, batch=7,
                             progress=lambda done, total: reported.append((done, total)))
    assert result.rewrapped == 30 and result.target_version == 2
    assert reported[-1] == (30, 30) and len(reported) == 5  # batches of 7
    db_session.expire_all()
    assert on_version(db_session, "identity", 1) == 0
    assert on_version(db_session, "identity", 2) == 30

    assert rotation.retire(db_session, path, keyring, "identity", 1, audit.CLI) == 30
    db_session.commit()
    assert not KeyRing.load(path).holds("identity", 1)  # the material left the file
    report = check_all(db_session, KeyRing.load(path))
    assert not any(r.failures for r in report.values())
    assert {"key_added", "key_promoted", "key_rotation_started", "key_rotation_done",
            "key_retired"} <= set(actions(db_session))
    states = {v["version"]: v["state"]
              for v in rotation.status(db_session, keyring)["chains"]["identity"]["versions"]}
    assert states == {1: "retired", 2: "primary"}


def test_promote_waits_for_every_live_process_that_loads_the_chain(db_session, ring):
    path, keyring = ring
    rotation.add(db_session, path, keyring, "content", audit.CLI)
    # A worker that reloaded nothing yet (it holds content v1 only), seen just now
    heartbeat.record(db_session, "worker-1", "worker", {"content": [1], "audit": [1],
                                                        "jobs": [1]})
    # A worker gone for long does not count; nor does identity, which workers never load
    heartbeat.record(db_session, "worker-gone", "worker", {"content": [1]},
                     now=utcnow() - timedelta(minutes=5))
    db_session.commit()
    with pytest.raises(InvalidTransitionError, match="1 live process"):
        rotation.promote(db_session, path, keyring, "content", 2, audit.CLI)
    assert KeyRing.load(path).primary_version("content") == 1

    heartbeat.record(db_session, "worker-1", "worker", {"content": [1, 2], "audit": [1],
                                                        "jobs": [1]})
    rotation.add(db_session, path, keyring, "identity", audit.CLI)
    rotation.promote(db_session, path, keyring, "identity", 2, audit.CLI)  # worker: n/a
    rotation.promote(db_session, path, keyring, "content", 2, audit.CLI)
    assert KeyRing.load(path).primary_version("content") == 2
    status = rotation.status(db_session, keyring)
    assert [p["id"] for p in status["processes"]] == ["worker-1"]
    content = {v["version"]: v for v in status["chains"]["content"]["versions"]}
    assert content[2]["held_by"] == ["worker-1"] and content[2]["state"] == "primary"
    assert content[1]["state"] == "retiring"


def test_the_primary_and_versions_in_use_are_never_retired(db_session, ring, people):
    path, keyring = ring
    with pytest.raises(InvalidTransitionError, match="primary"):
        rotation.retire(db_session, path, keyring, "identity", 1, audit.CLI)
    rotation.add(db_session, path, keyring, "identity", audit.CLI)
    rotation.promote(db_session, path, keyring, "identity", 2, audit.CLI)
    with pytest.raises(InvalidTransitionError, match="30 row"):
        rotation.retire(db_session, path, keyring, "identity", 1, audit.CLI)
    assert KeyRing.load(path).holds("identity", 1)
    with pytest.raises(InvalidTransitionError, match="not rotated online"):
        rotation.add(db_session, path, keyring, "audit", audit.CLI)


def test_a_rotation_stopped_between_batches_resumes_from_its_checkpoint(
        engine, db_session, ring, people):
    path, keyring = ring
    sessions = make_session_factory(engine)
    rotation.add(db_session, path, keyring, "identity", audit.CLI)
    rotation.promote(db_session, path, keyring, "identity", 2, audit.CLI)
    db_session.commit()

    class Stop(Exception):
        pass

    def stop_after_two_batches(done, _total):
        if done >= 20:
            raise Stop

    with pytest.raises(Stop):
        rotation.rotate(sessions, keyring, "identity", audit.CLI, batch=10,
                        progress=stop_after_two_batches)
    db_session.expire_all()
    checkpoint = db_session.scalars(select(KeyRotation)).one()
    assert (checkpoint.status, checkpoint.done, checkpoint.total) == ("running", 20, 30)
    assert on_version(db_session, "identity", 1) == 10  # each batch committed with it

    result = rotation.rotate(sessions, keyring, "identity", audit.CLI, batch=10)
    assert result.rewrapped == 10
    db_session.expire_all()
    checkpoint = db_session.scalars(select(KeyRotation)).one()  # the same one, resumed
    assert (checkpoint.status, checkpoint.done, checkpoint.total) == ("done", 30, 30)


def test_a_key_wrapped_under_the_old_version_during_rotation_is_moved_too(
        engine, db_session, ring, people):
    path, keyring = ring
    sessions = make_session_factory(engine)
    stale = KeyRing.load(path)  # a process that has not reloaded the keyring yet
    rotation.add(db_session, path, keyring, "identity", audit.CLI)
    rotation.promote(db_session, path, keyring, "identity", 2, audit.CLI)
    db_session.commit()
    created = []

    def meanwhile(done, _total):
        if not created:  # the stale process files a new person mid-rotation, under v1
            with sessions() as session:
                vault = Vault(session, stale, audit.CLI)
                created.append(create_beneficiary(session, vault, canary_identity(99)).id)
                session.commit()

    result = rotation.rotate(sessions, keyring, "identity", audit.CLI, batch=10,
                             progress=meanwhile)
    assert result.rewrapped == 31  # in this pass or the next, by where its uuid falls
    db_session.expire_all()
    assert on_version(db_session, "identity", 1) == 0


def test_index_rotation_keeps_duplicates_found_before_during_and_after(
        engine, db_session, ring, people):
    path, keyring = ring
    sessions = make_session_factory(engine)
    vault = Vault(db_session, keyring, audit.CLI)

    def same_person(n):  # each canary identity is a distinct person (tests.factories)
        return {r.id for i, r in enumerate(people) if i == n}

    def found(n):
        return {r.id for r in find_duplicates(db_session, vault, canary_identity(n))}

    assert found(3) == same_person(3)
    rotation.add(db_session, path, keyring, "index", audit.CLI)
    rotation.promote(db_session, path, keyring, "index", 2, audit.CLI)
    db_session.commit()
    # Promoted, not rotated: records are on v1, a new one goes on v2; both are found
    vault = Vault(db_session, keyring, audit.CLI)
    newcomer = create_beneficiary(db_session, vault, canary_identity(40))
    db_session.commit()
    assert found(3) == same_person(3)
    assert found(40) == same_person(40) | {newcomer.id}
    db_session.commit()  # the audit rows of those decryptions

    result = rotation.rotate(sessions, keyring, "index", audit.CLI, batch=8)
    assert result.rewrapped == 30
    db_session.expire_all()
    assert set(db_session.scalars(select(IdentityRecord.index_version))) == {2}
    db_session.commit()
    rotation.retire(db_session, path, keyring, "index", 1, audit.CLI)
    db_session.commit()
    keyring.refresh()
    vault = Vault(db_session, keyring, audit.CLI)
    assert found(3) == same_person(3)
    assert found(40) == same_person(40) | {newcomer.id}
    decrypted = [e for e in db_session.scalars(select(AuditEvent))
                 if e.purpose == rotation.INDEX_PURPOSE]
    assert decrypted and all(e.fields for e in decrypted)  # audited, ids and fields only


def test_a_process_follows_the_keyring_file_without_restart(ring):
    path, keyring = ring
    before = keyring.versions("content")
    assert not keyring.refresh()  # unchanged file: nothing to do
    KeyRing.add_version(path, "content")
    assert keyring.refresh()
    assert [v.version for v in keyring.versions("content")] == [
        *[v.version for v in before], 2]
    worker = KeyRing.load(path, ("content", "audit", "jobs"))
    KeyRing.set_primary(path, "content", 2)
    worker.refresh()
    assert worker.primary_version("content") == 2
    with pytest.raises(KeyNotFoundError):
        worker.primary_version("identity")  # a reload never widens a worker's chains
    assert json.loads(path.read_text())["chains"]["content"]["primary"] == 2
    assert path.stat().st_mode & 0o777 == 0o600


def test_rows_of_the_data_key_table_are_only_rewrapped(engine, db_session, ring, people):
    """Rotation never touches field ciphertexts: the identity columns are byte-identical."""
    path, keyring = ring
    before = {r.id: r.nom for r in db_session.scalars(select(IdentityRecord))}
    wrapped = {r.record_uuid: r.wrapped_dek for r in db_session.scalars(
        select(RecordKey).where(RecordKey.chain == "identity"))}
    rotation.add(db_session, path, keyring, "identity", audit.CLI)
    rotation.promote(db_session, path, keyring, "identity", 2, audit.CLI)
    db_session.commit()
    rotation.rotate(make_session_factory(engine), keyring, "identity", audit.CLI)
    db_session.expire_all()
    assert {r.id: r.nom for r in db_session.scalars(select(IdentityRecord))} == before
    after = {r.record_uuid: r.wrapped_dek for r in db_session.scalars(
        select(RecordKey).where(RecordKey.chain == "identity"))}
    assert after.keys() == wrapped.keys()
    assert all(after[k] != wrapped[k] for k in after)


def test_deep_reencryption_gives_a_person_new_data_keys_and_drops_the_old_ones(
        db_session, ring, test_env):
    from shared.domain.sheets import read_values
    from shared.models import Sheet
    from tests.factories import make_sheet
    from tests.helpers import icli

    path, keyring = ring
    vault = Vault(db_session, keyring, audit.CLI)
    _north, _south, structures = reference_data(db_session)
    sheet = make_sheet(db_session, vault, structures["ssd"], canary_identity(5))
    other = make_sheet(db_session, vault, structures["ssd"], canary_identity(6))
    db_session.commit()
    person = sheet.beneficiary
    before_values = read_values(vault, sheet, purpose="test")
    record = db_session.scalars(select(IdentityRecord)
                                .where(IdentityRecord.beneficiary_id == person.id)).one()
    before = (sheet.situation_data, record.nom)
    old_keys = {(r.chain, r.dek_version, r.wrapped_dek) for r in db_session.scalars(
        select(RecordKey).where(RecordKey.record_uuid == person.uuid))}

    count = rotation.deep_reencrypt(db_session, keyring, person, audit.CLI)
    db_session.commit()
    assert count >= 4  # name fields, sheet columns, its history
    db_session.expire_all()
    sheet, record = db_session.get(Sheet, sheet.id), db_session.get(IdentityRecord, record.id)
    assert (sheet.situation_data, record.nom) != before  # new ciphertexts
    keys = {(r.chain, r.dek_version) for r in db_session.scalars(
        select(RecordKey).where(RecordKey.record_uuid == person.uuid))}
    assert keys == {(chain, 2) for chain, _v, _w in old_keys}  # the old keys are gone
    vault = Vault(db_session, keyring, audit.CLI)
    assert read_values(vault, sheet, purpose="test") == before_values
    assert vault.open(record, "nom", purpose="test").reveal() == canary_identity(5).nom
    assert read_values(vault, other, purpose="test")  # another person is untouched
    assert not any(r.failures for r in check_all(db_session, keyring).values())
    db_session.commit()

    # The same from the CLI, by pseudonym (never a name)
    result = icli({**test_env, "ICLI_KEYRING": str(path)}, "keys", "deep-reencrypt",
                  "--pseudonym", other.beneficiary.pseudonym)
    assert "re-encrypted" in result.stdout
    db_session.expire_all()
    assert set(db_session.scalars(select(RecordKey.dek_version).where(
        RecordKey.record_uuid == other.beneficiary.uuid))) == {2}
