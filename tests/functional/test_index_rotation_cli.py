"""`icli keys rotate --chain index` beside records that do not decrypt (issue 16, item 10)."""

from __future__ import annotations

from sqlalchemy import select

from shared.crypto import KeyRing
from shared.domain import audit
from shared.domain.beneficiaries import create_beneficiary
from shared.encrypted import Vault
from shared.models import AuditEvent, IdentityRecord, RecordKey
from tests.factories import canary_identity, canary_values, reference_data
from tests.helpers import icli


def test_index_rotation_reports_undecryptable_records_by_id_and_moves_the_others(
        db_session, test_env, tmp_path):
    # Given five people: two with a name copied from another row, one whose data key was
    # altered (tampering at the field and at the key level)
    path = tmp_path / "keyring.json"
    KeyRing.create_file(path)
    env = {**test_env, "ICLI_KEYRING": str(path)}
    keyring = KeyRing.load(path)
    vault = Vault(db_session, keyring, audit.CLI)
    _north, _south, structures = reference_data(db_session)
    records = [create_beneficiary(db_session, vault, canary_identity(n), structures["ssd"].id)
               for n in range(5)]
    broken = [records[1].id, records[2].id, records[3].id]
    records[1].nom = records[0].nom
    records[3].prenom = records[4].prenom
    key = db_session.scalars(select(RecordKey).where(
        RecordKey.record_uuid == records[2].key_owner_uuid, RecordKey.chain == "identity")).one()
    key.wrapped_dek = key.wrapped_dek[:-1] + bytes([key.wrapped_dek[-1] ^ 1])
    db_session.commit()
    icli(env, "keys", "add", "--chain", "index")
    icli(env, "keys", "promote", "--chain", "index", "--version", "2")

    # When the index chain is rotated
    result = icli(env, "keys", "rotate", "--chain", "index", check=False)

    # Then it finishes, exits non-zero with the three ids, no traceback and no personal data
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "3 identity record(s) could not be decrypted" in result.stderr
    assert f"ids {broken[0]}, {broken[1]}, {broken[2]}" in result.stderr
    for n in range(5):
        for value in canary_values(canary_identity(n)):
            assert value not in result.stdout + result.stderr
    db_session.expire_all()
    versions = {r.id: r.index_version for r in db_session.scalars(select(IdentityRecord))}
    assert versions == {r.id: (1 if r.id in broken else 2) for r in records}
    events = {e.action: e for e in db_session.scalars(select(AuditEvent))}
    assert "key_rotation_done" not in events
    assert events["key_rotation_incomplete"].object_ids == ",".join(map(str, broken))
    failures = [e for e in db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "integrity_failure"))]
    assert sorted(int(e.object_ids) for e in failures) == broken
