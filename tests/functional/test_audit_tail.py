"""Rows deleted at the tail of the audit chain, and rows MACed under a wrong audit key
(issue 16, item 3 and the repair of item 2), as an administrator meets them with `icli`."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from shared.crypto import KeyRing
from shared.db import utcnow
from shared.domain import audit
from shared.models import AuditEvent, AuditHead, AuditReanchor
from tests.helpers import client_as, icli, replaced, start_worker, stop_worker, wait_for


def write_rows(db_session, keyring, count: int, purpose: str) -> None:
    """Rows written, then sealed as the worker does within seconds (after the grace: rows
    deleted just before leave a gap in ids on PostgreSQL, whose ids are never reused)."""
    for n in range(count):
        audit.record(db_session, keyring, audit.CLI, "decrypt", object_type="identity_records",
                     object_ids=[n + 1], fields=["nom"], purpose=f"{purpose} {n}")
    db_session.commit()
    audit.seal(db_session, keyring, now=utcnow() + timedelta(minutes=1))
    db_session.commit()


def truncate_to(db_session, last_kept: AuditEvent) -> None:
    """What someone with write access to the database does: delete the tail, move the head."""
    db_session.execute(delete(AuditEvent).where(AuditEvent.seq > last_kept.seq))
    db_session.execute(update(AuditHead).values(seq=last_kept.seq, mac=last_kept.mac))
    db_session.commit()


def test_deleting_the_tail_and_moving_the_head_back_is_detected(test_env, db_session, chain):
    truncate_to(db_session, chain[3])
    result = icli(test_env, "audit", "verify", check=False)
    assert result.returncode != 0
    assert "head signature mismatch" in result.stderr


@pytest.fixture
def checkpointed(test_env, tmp_path):
    path = tmp_path / "checkpoint.json"
    return {**test_env, "ICLI_AUDIT_CHECKPOINT_FILE": str(path)}, path


def test_truncation_covered_by_new_rows_is_detected_against_the_checkpoint(
        checkpointed, db_session, keyring, chain):
    env, path = checkpointed
    assert "checkpoint of seq 6" in icli(env, "audit", "checkpoint").stdout
    truncate_to(db_session, chain[2])
    write_rows(db_session, keyring, 5, "after")  # the head is signed again by the sealer
    assert icli(env | {"ICLI_AUDIT_CHECKPOINT_FILE": ""}, "audit", "verify").returncode == 0
    for args in (("audit", "verify"), ("audit", "verify", "--checkpoint", str(path))):
        result = icli(env, *args, check=False)
        assert result.returncode != 0
        assert "rewritten: seq 6 differs from the checkpoint" in result.stderr


def test_truncation_before_any_new_row_is_detected_against_the_checkpoint(
        checkpointed, db_session, keyring, chain):
    env, path = checkpointed
    icli(env, "audit", "checkpoint")
    truncate_to(db_session, chain[2])
    db_session.execute(update(AuditHead).values(sig=""))  # as if never signed (old version)
    db_session.commit()
    result = icli(env, "audit", "verify", "--checkpoint", str(path), check=False)
    assert result.returncode != 0
    assert "truncated: the chain ends at seq 3, the checkpoint of" in result.stderr


def test_a_forged_checkpoint_is_refused(checkpointed, db_session, chain):
    env, path = checkpointed
    icli(env, "audit", "checkpoint")
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "seq": 2}))
    result = icli(env, "audit", "verify", check=False)
    assert result.returncode != 0
    assert "is forged or of another instance" in result.stderr


def test_an_intact_chain_is_consistent_with_its_checkpoint(checkpointed, db_session, keyring,
                                                           chain):
    env, path = checkpointed
    icli(env, "audit", "checkpoint")
    write_rows(db_session, keyring, 2, "later")
    assert f"consistent with checkpoint {path}" in icli(env, "audit", "verify").stdout


def test_the_worker_writes_checkpoints_on_its_schedule(checkpointed, engine, redis, db_session,
                                                       keyring, chain, tmp_path):
    env, path = checkpointed
    worker = start_worker(env, redis, tmp_path / "worker.log")
    try:
        wait_for(path.is_file, timeout=60)
    finally:
        stop_worker(worker)
    assert json.loads(path.read_text())["seq"] >= 6
    assert "consistent with checkpoint" in icli(env, "audit", "verify").stdout


def test_the_worker_seals_the_rows_that_requests_commit(test_env, engine, redis, db_session,
                                                       keyring, chain, tmp_path):
    for n in range(3):
        audit.record(db_session, keyring, audit.Actor(n + 1), "decrypt",
                     object_type="identity_records", object_ids=[n + 1], fields=["nom"],
                     purpose="consultation")
    db_session.commit()
    unsealed = select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None))
    assert db_session.scalar(unsealed) == 3
    worker = start_worker(test_env, redis, tmp_path / "worker.log")
    try:
        wait_for(lambda: db_session.scalar(unsealed) == 0, timeout=60)
    finally:
        stop_worker(worker)
    head = db_session.get(AuditHead, 1, populate_existing=True)
    assert head.seq == 9
    result = icli(test_env, "audit", "verify")
    assert "audit chain verified: 9 row(s)" in result.stdout
    assert "not sealed" not in result.stdout + result.stderr


def test_the_dpo_downloads_a_signed_checkpoint(app, world, db_session, tmp_path, test_env):
    response = client_as(app, "dpo").get("/dpo/point-de-controle.json")
    assert response.status_code == 200
    saved = tmp_path / "checkpoint.json"
    saved.write_bytes(response.get_data())
    db_session.expire_all()
    exported = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "audit_checkpoint_exported")).one()
    assert exported.object_ids == str(json.loads(saved.read_text())["seq"])
    assert "consistent with checkpoint" in icli(test_env, "audit", "verify", "--checkpoint",
                                                str(saved)).stdout


def test_rows_written_under_a_wrong_audit_key_are_repaired_by_a_signed_reanchor(
        test_env, settings, db_session, keyring, chain, tmp_path):
    # History from before the keyring was checked: three rows MACed under a replaced key.
    wrong = KeyRing.load(replaced(settings.keyring_path, tmp_path / "wrong.json", "audit"))
    write_rows(db_session, wrong, 3, "wrong key")
    write_rows(db_session, keyring, 2, "right key again")
    result = icli(test_env, "audit", "verify", check=False)
    assert "MAC mismatch" in result.stderr

    result = icli(test_env, "audit", "re-anchor", "--reason", "trousseau erroné (incident 12)")
    assert "rows seq 7-9 re-anchored" in result.stdout
    verified = icli(test_env, "audit", "verify").stdout
    assert "break repaired by an administrator's re-anchor: rows seq 7-9" in verified
    db_session.expire_all()
    (row,) = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "audit_reanchored")).all()
    assert row.object_ids == "7,9" and row.purpose == "trousseau erroné (incident 12)"
    assert icli(test_env, "audit", "re-anchor", "--reason", "again", check=False).returncode != 0

    db_session.execute(update(AuditReanchor).values(to_seq=10))  # widening it needs the key
    db_session.commit()
    assert "re-anchor forged" in icli(test_env, "audit", "verify", check=False).stderr


def test_a_gap_is_never_reanchored(test_env, db_session, chain):
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == chain[3].id))
    db_session.commit()
    result = icli(test_env, "audit", "re-anchor", "--reason", "x", check=False)
    assert result.returncode != 0
    assert "that evidence is kept" in result.stderr


