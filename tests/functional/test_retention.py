"""Retention as the administrator and the worker run it: `icli retention run` crypto-shreds
people past their retention, and nothing of them can be read back from the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from shared.crypto import CryptoError, open_field
from shared.db import utcnow
from shared.domain import audit, retention
from shared.domain.sheet_workflow import transition
from shared.domain.sheets import read_values
from shared.encrypted import Vault
from shared.integrity import check_all
from shared.models import (
    AuditEvent,
    Beneficiary,
    GeneratedDocument,
    IdentityRecord,
    MaintenanceRun,
    RecordKey,
    Sheet,
    SheetEvent,
)
from shared.protected import IDENTITY_FIELDS
from tests.factories import canary_identity, canary_values, make_sheet
from tests.helpers import database_dump, icli


def withdraw(db_session, vault, sheet, months_ago: int) -> None:
    """Withdraw the sheet, as if ``months_ago`` months ago."""
    transition(db_session, vault, sheet, "withdraw", actor_id=None, reason="Test.")
    when = retention.months_ago(utcnow(), months_ago)
    db_session.execute(update(SheetEvent).where(SheetEvent.sheet_id == sheet.id)
                       .values(at=when))


@pytest.fixture
def people(world, db_session, vault):
    """Three more people: closed 13 months ago, inactive 25 months, closed 2 months ago."""
    ssd = world["structures"]["ssd"]
    made = {}
    for n, name in ((5, "closed"), (6, "inactive"), (7, "recent")):
        made[name] = make_sheet(db_session, vault, ssd, canary_identity(n), status="soumise")
    withdraw(db_session, vault, made["closed"], 13)
    withdraw(db_session, vault, made["recent"], 2)
    db_session.execute(update(Beneficiary)
                       .where(Beneficiary.id == made["inactive"].beneficiary_id)
                       .values(last_activity_at=retention.months_ago(utcnow(), 25)))
    feedback = GeneratedDocument(meeting_id=world["meeting"].id, kind="feedback",
                                 sheet_id=made["closed"].id, content_version=1,
                                 filename="fr.docx", media_type="application/octet-stream",
                                 size=2, body=b"")
    db_session.add(feedback)
    db_session.flush()
    vault.seal_blob(feedback, "body", b"fiche retour")
    db_session.commit()
    return made


def secrets_of(db_session, sheet: Sheet) -> dict:
    """Everything encrypted about the sheet's person, as stored, and their wrapped keys."""
    beneficiary = sheet.beneficiary
    records = db_session.scalars(select(IdentityRecord)
                                 .where(IdentityRecord.beneficiary_id == beneficiary.id)).all()
    tokens = [(r.uuid, "identity_records", f, getattr(r, f)) for r in records
              for f in IDENTITY_FIELDS if getattr(r, f)]
    tokens += [(sheet.uuid, "sheets", c, getattr(sheet, c))
               for c in ("situation_data", "sensitive_data", "referent_data")]
    wrapped = db_session.scalars(select(RecordKey.wrapped_dek)
                                 .where(RecordKey.record_uuid == beneficiary.uuid)).all()
    assert tokens and len(wrapped) == 2  # identity and content chains
    return {"uuid": beneficiary.uuid, "tokens": tokens, "wrapped": wrapped,
            "identity_id": records[0].id}


def every_dek(db_session, keyring) -> list[tuple[int, bytes]]:
    return [(row.dek_version, keyring.unwrap(row.chain, row.record_uuid, row.dek_version,
                                             row.kek_version, row.wrapped_dek))
            for row in db_session.scalars(select(RecordKey))]


def checkpoint(engine, settings) -> None:
    if settings.is_sqlite:
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def test_dry_run_lists_references_and_changes_nothing(test_env, db_session, people):
    result = icli(test_env, "retention", "run", "--dry-run")
    assert f"would purge beneficiary {people['closed'].beneficiary_id} (situation close): " \
           f"{people['closed'].reference}" in result.stdout
    assert f"would purge beneficiary {people['inactive'].beneficiary_id} (sans activité)" \
           in result.stdout
    assert "would purge: 2 person(s)" in result.stdout
    assert people["recent"].reference not in result.stdout
    db_session.expire_all()
    assert db_session.scalar(select(Beneficiary.purged_at)
                             .where(Beneficiary.id == people["closed"].beneficiary_id)) is None
    for value in canary_values(canary_identity(5)):
        assert value not in result.stdout


def test_after_a_purge_nothing_of_the_person_can_be_read_even_with_every_key(
        test_env, settings, engine, db_session, keyring, world, people):
    # Given what is stored about the two people due, captured before the purge
    due = {name: secrets_of(db_session, people[name]) for name in ("closed", "inactive")}
    # When the administrator runs the retention
    result = icli(test_env, "retention", "run")
    assert "purged: 2 person(s)" in result.stdout
    db_session.expire_all()
    # Then no data key of theirs is left, and no remaining key opens their old ciphertexts
    deks = every_dek(db_session, keyring)  # the keyring file holds every chain
    for stored in due.values():
        assert not db_session.scalars(select(RecordKey)
                                      .where(RecordKey.record_uuid == stored["uuid"])).all()
        for uuid, table, field, token in stored["tokens"]:
            for version, dek in deks:
                with pytest.raises(CryptoError):
                    open_field(dek, table=table, record_uuid=uuid, field=field,
                               dek_version=version, token=token)
        assert db_session.get(IdentityRecord, stored["identity_id"]) is None
    closed = db_session.get(Sheet, people["closed"].id)
    assert (closed.situation_data, closed.sensitive_data, closed.referent_data) == (None,) * 3
    assert closed.reference == people["closed"].reference  # kept for the sessions' statistics
    assert not db_session.scalars(select(GeneratedDocument)
                                  .where(GeneratedDocument.sheet_id == closed.id)).all()
    # And the database files (with the WAL, after a checkpoint) hold none of it
    checkpoint(engine, settings)
    dump = database_dump(engine, settings)
    for n in (5, 6):
        for value in canary_values(canary_identity(n)):
            assert value.encode() not in dump, n
    for stored in due.values():
        for *_, token in stored["tokens"]:
            assert token.encode() not in dump
        if settings.is_sqlite:
            for wrapped in stored["wrapped"]:
                assert wrapped not in dump
    # And everyone else still reads fine: `icli check` passes, the recent sheet opens
    assert "all protected values decrypt" in icli(test_env, "check").stdout
    vault = Vault(db_session, keyring, audit.CLI)
    assert read_values(vault, db_session.get(Sheet, people["recent"].id), purpose="test")
    kept = db_session.scalar(select(IdentityRecord).where(
        IdentityRecord.beneficiary_id == world["sheets"][0].beneficiary_id))
    assert vault.open(kept, "nom", purpose="test").reveal() == canary_identity(0).nom
    # And each purge is an audit row with ids only, on a chain that still verifies
    purges = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "purge")).all()
    assert {p.object_ids for p in purges} == {str(people[n].beneficiary_id)
                                              for n in ("closed", "inactive")}
    assert "audit chain verified" in icli(test_env, "audit", "verify").stdout


def test_dossiers_of_old_sessions_are_purged_and_the_minutes_kept(
        db_session, keyring, vault, world):
    meeting = world["meeting"]
    kept = {}
    for kind in ("dossier", "minutes", "agenda"):
        document = GeneratedDocument(meeting_id=meeting.id, kind=kind, content_version=1,
                                     filename=f"{kind}.docx", size=2, body=b"",
                                     media_type="application/octet-stream")
        db_session.add(document)
        db_session.flush()
        vault.seal_blob(document, "body", kind.encode())
        kept[kind] = document.id
    db_session.commit()
    later = meeting.starts_at + timedelta(days=400)
    report = retention.run(db_session, keyring, audit.CLI, retention.Policy(), now=later)
    db_session.commit()
    assert report.dossier_ids == [kept["dossier"]]
    assert db_session.get(GeneratedDocument, kept["dossier"]) is None
    assert db_session.get(GeneratedDocument, kept["minutes"]) is not None
    assert db_session.get(GeneratedDocument, kept["agenda"]) is not None
    assert all(not r.failures for r in check_all(db_session, keyring).values())


def test_old_audit_rows_go_and_the_chain_still_verifies(test_env, db_session, keyring, world):
    later = utcnow() + timedelta(days=400)
    report = retention.run(db_session, keyring, audit.CLI, retention.Policy(), now=later)
    db_session.commit()
    assert report.audit_rows > 0
    assert [e.action for e in db_session.scalars(select(AuditEvent))] == ["audit_purged"]
    assert "1 row(s)" in icli(test_env, "audit", "verify").stdout


def test_the_daily_run_is_claimed_by_one_worker_a_day(db_session):
    now = utcnow()
    assert retention.claim_daily_run(db_session, "retention", now)
    assert not retention.claim_daily_run(db_session, "retention", now + timedelta(hours=1))
    assert retention.claim_daily_run(db_session, "retention", now + timedelta(days=1))
    assert db_session.get(MaintenanceRun, "retention").last_run_at == now + timedelta(days=1)


def test_the_worker_purges_once_a_day_in_its_maintenance_step(
        db_session, people, worker_process):
    from tests.helpers import wait_for

    def purged():
        db_session.expire_all()
        return db_session.scalar(select(Beneficiary.purged_at).where(
            Beneficiary.id == people["closed"].beneficiary_id))

    wait_for(purged, timeout=60)
    assert db_session.get(MaintenanceRun, "retention") is not None
    assert b"retention: 2 person(s)" in worker_process.log_path.read_bytes()
