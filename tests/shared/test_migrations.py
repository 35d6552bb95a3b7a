from datetime import datetime

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
