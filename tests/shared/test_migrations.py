from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select, text

from shared.db import Base
from shared.migrate import upgrade
from shared.models import RecordKey


def test_migrations_head_matches_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_every_model_table_exists_after_upgrade(engine):
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables


def test_upgrade_is_idempotent(engine):
    upgrade(engine)  # a second run on an up-to-date database changes nothing
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert context.get_current_revision() is not None


def test_record_keys_become_clustered_on_sqlite_and_keep_their_rows(tmp_path):
    """0012 rebuilds record_keys WITHOUT ROWID (rotation walks them in file order)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0011")
    row = {"record_uuid": "u-1", "chain": "identity", "dek_version": 1, "kek_version": 1,
           "wrapped_dek": b"\x01\x01wrapped", "created_at": datetime(2026, 1, 2)}
    with engine.begin() as conn:
        conn.execute(insert(RecordKey.__table__), [row])
    upgrade(engine)
    with engine.connect() as conn:
        ddl = conn.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'record_keys'"))
        kept = conn.execute(select(RecordKey.__table__)).mappings().one()
    assert "WITHOUT ROWID" in ddl
    assert dict(kept) == row
    assert {ix["name"] for ix in inspect(engine).get_indexes("record_keys")} == {
        "ix_record_keys_rotation"}
    engine.dispose()


def test_sheet_history_recorded_before_0017_gets_the_state_each_transition_left(tmp_path):
    """Issue 15: transitions used to record from == to; notes really keep the state."""
    from shared.models import SheetEvent

    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0013")
    recorded = [("submit", "soumise", "soumise"), ("reveal_identity", "soumise", "soumise"),
                ("accept", "recevable", "recevable"), ("inscribe", "inscrite", "inscrite")]
    with engine.begin() as conn:
        conn.execute(insert(SheetEvent.__table__), [
            {"uuid": f"e-{n}", "sheet_id": 1, "at": datetime(2026, 1, 2), "action": action,
             "from_status": source, "to_status": target}
            for n, (action, source, target) in enumerate(recorded)])
    upgrade(engine)
    with engine.connect() as conn:
        history = conn.execute(select(SheetEvent.action, SheetEvent.from_status,
                                      SheetEvent.to_status).order_by(SheetEvent.id)).all()
    assert [tuple(row) for row in history] == [
        ("submit", "brouillon", "soumise"), ("reveal_identity", "soumise", "soumise"),
        ("accept", "soumise", "recevable"), ("inscribe", "recevable", "inscrite")]
    engine.dispose()


def test_a_chain_written_before_0020_still_verifies_and_new_rows_are_sealed_after_it(
        tmp_path, keyring):
    """Issue 18: rows and head of the former design (seq and one MAC per row, written under
    the head lock) keep verifying; the sealer chains the new rows on from their last MAC."""
    from shared.crypto import mac
    from shared.db import make_session_factory
    from shared.domain import audit
    from shared.models import AuditEvent, AuditHead

    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0019")
    secret, prev, rows = keyring.secret("audit"), "", []
    for seq in (1, 2, 3):
        row = AuditEvent(id=seq, seq=seq, at=datetime(2026, 11, seq), actor_id=None,
                         actor_label="cli", action="decrypt", object_type="identity_records",
                         object_ids=str(seq), fields="nom", purpose="avant 0020")
        row.mac = prev = mac(secret, *audit._v1_parts(prev, row))
        rows.append({c.key: getattr(row, c.key) for c in AuditEvent.__table__.columns
                     if c.key != "row_mac"})
    head = AuditHead(id=1, seq=3, mac=prev)
    head.sig = mac(secret, *audit._head_parts(head))
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO audit_events (id, seq, at, actor_id, actor_label, action, object_type,"
            " object_ids, fields, purpose, mac) VALUES (:id, :seq, :at, :actor_id,"
            " :actor_label, :action, :object_type, :object_ids, :fields, :purpose, :mac)"),
            rows)
        conn.execute(text("INSERT INTO audit_head (id, seq, mac, anchor_seq, anchor_mac,"
                          " anchor_sig, sig) VALUES (1, 3, :mac, 0, '', '', :sig)"),
                     {"mac": head.mac, "sig": head.sig})
    upgrade(engine)
    with make_session_factory(engine)() as session:
        assert audit.verify_chain(session, keyring).ok
        audit.record(session, keyring, audit.CLI, "sheet_saved", object_ids=[1])
        session.commit()
        assert audit.seal(session, keyring) == 1
        session.commit()
        report = audit.verify_chain(session, keyring)
        assert (report.ok, report.rows, report.unsealed) == (True, 4, 0)
        session.execute(text("UPDATE audit_events SET purpose = 'modifié' WHERE id = 2"))
        session.commit()
        assert audit.verify_chain(session, keyring).first_broken_id == 2
    engine.dispose()


def test_a_downgrade_over_data_is_refused_before_any_step(engine, world, test_env):
    from shared.migrate import DowngradeRefusedError, downgrade
    from tests.helpers import icli

    with engine.connect() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
    for target in ("0001", "base", "-1"):
        with pytest.raises(DowngradeRefusedError, match="this database holds data"):
            downgrade(engine, target)
    refused = icli(test_env, "db", "downgrade", "0019", check=False)
    assert refused.returncode != 0 and "Restore the backup" in refused.stderr
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == before
        assert conn.scalar(text("SELECT count(*) FROM users")) == len(world["users"])


def test_an_empty_database_goes_down_and_up_again(tmp_path):
    from shared.migrate import downgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    upgrade(engine)
    downgrade(engine, "0001")
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0001"
    upgrade(engine)
    assert not compare_metadata(MigrationContext.configure(engine.connect()), Base.metadata)
    engine.dispose()


def test_web_and_worker_refuse_a_database_whose_schema_is_not_theirs(settings, tmp_path):
    """A new database, or one an upgrade did not reach: refused at start with what to run,
    before anything is written (no keyring is created for it)."""
    import dataclasses

    from generator import runtime
    from intake import create_app
    from shared.migrate import SchemaNotCurrentError

    database = tmp_path / "new.sqlite3"
    fresh = dataclasses.replace(settings, database_url=f"sqlite:///{database}",
                                keyring_path=tmp_path / "keyring.json")
    for start in (create_app, runtime.init):
        with pytest.raises(SchemaNotCurrentError, match=r"nothing \(new database\).*icli db "
                                                        r"upgrade"):
            start(fresh)
    assert not fresh.keyring_path.exists()

    behind = create_engine(fresh.database_url)
    upgrade(behind, "0019")
    behind.dispose()
    with pytest.raises(SchemaNotCurrentError,
                       match=r"schema is at 0019, this code needs (?!0019)\w+"):
        create_app(fresh)
