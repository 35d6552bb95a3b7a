"""shared/domain/audit.py, issue 18: writers insert rows with their own MAC and never wait on
each other; the sealer chains committed rows in id order without passing a gap that an open
transaction may still fill; verification covers the sealed chain and the unsealed tail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from shared.crypto import mac
from shared.db import utcnow
from shared.domain import audit
from shared.models import AuditEvent, AuditHead


def write(session, keyring, count: int, purpose: str = "test") -> list[AuditEvent]:
    events = [audit.record(session, keyring, audit.CLI, "decrypt", object_type="identity_records",
                           object_ids=[n + 1], fields=["nom"], purpose=f"{purpose} {n}")
              for n in range(count)]
    session.commit()
    return events


def rows(session) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def sealed(session) -> list[AuditEvent]:
    """The chain, in its order."""
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.seq.is_not(None))
                                .order_by(AuditEvent.seq)))


def seal(session, keyring, **kwargs) -> int:
    count = audit.seal(session, keyring, **kwargs)
    session.commit()
    return count


def later(minutes: float = 10):
    return utcnow() + timedelta(minutes=minutes)


def test_a_writer_touches_nothing_shared_and_its_row_verifies_before_it_is_sealed(
        db_session, keyring):
    (event,) = write(db_session, keyring, 1)
    assert (event.seq, event.mac) == (None, None)
    assert event.row_mac
    assert db_session.get(AuditHead, 1) is None  # no writer creates or moves the head
    report = audit.verify_chain(db_session, keyring)
    assert report.ok
    assert (report.rows, report.unsealed, report.stale_unsealed) == (1, 1, 0)


def test_the_sealer_chains_rows_in_id_order_and_signs_the_head(db_session, keyring):
    events = write(db_session, keyring, 4)
    assert seal(db_session, keyring) == 4
    chain = sealed(db_session)
    assert [e.id for e in chain] == [e.id for e in events]
    assert [e.seq for e in chain] == [1, 2, 3, 4]
    head = db_session.get(AuditHead, 1)
    assert (head.seq, head.mac) == (4, chain[-1].mac)
    assert head.sig
    assert seal(db_session, keyring) == 0  # nothing new: the head stays
    report = audit.verify_chain(db_session, keyring)
    assert report.ok
    assert (report.rows, report.unsealed) == (4, 0)


UNSEALED_EDITS = {
    "purpose": lambda e: {"purpose": "autre motif"},
    "action": lambda e: {"action": "export"},
    "at": lambda e: {"at": e.at - timedelta(microseconds=1)},
    "actor_id": lambda e: {"actor_id": 77},
    "object_ids": lambda e: {"object_ids": "999"},
    "id": lambda e: {"id": e.id + 1000},  # renumbered to move it in the future chain
    "row_mac": lambda e: {"row_mac": "0" * 64},
}


@pytest.mark.parametrize("edit", UNSEALED_EDITS.values(), ids=UNSEALED_EDITS.keys())
def test_editing_an_unsealed_row_is_caught_by_its_own_mac(db_session, keyring, edit):
    write(db_session, keyring, 3)
    seal(db_session, keyring)
    target = write(db_session, keyring, 3, "tail")[1]
    values = edit(target)
    db_session.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(**values))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert not report.ok
    assert report.first_broken_id == values.get("id", target.id)
    assert report.reason == "MAC mismatch (row not sealed yet)"


def test_an_edited_unsealed_row_is_never_sealed_into_a_verifying_chain(db_session, keyring):
    target = write(db_session, keyring, 3)[1]
    db_session.execute(update(AuditEvent).where(AuditEvent.id == target.id)
                       .values(purpose="autre motif"))
    db_session.commit()
    seal(db_session, keyring)
    report = audit.verify_chain(db_session, keyring)
    assert (report.ok, report.first_broken_id, report.reason) == (False, target.id,
                                                                  "MAC mismatch")


def test_deleting_an_unsealed_row_older_than_the_sealing_interval_is_reported(
        db_session, keyring):
    write(db_session, keyring, 3)
    seal(db_session, keyring)
    tail = write(db_session, keyring, 3, "tail")
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == tail[1].id))
    db_session.commit()
    # Rows this young may be the last ones of a transaction: no gap is judged yet
    assert audit.verify_chain(db_session, keyring).ok
    # Once they are older than the interval the sealer had to see them, the gap is reported
    report = audit.verify_chain(db_session, keyring, now=later())
    assert not report.ok
    assert report.first_broken_id == tail[2].id
    assert report.reason.startswith(f"gap: unsealed row(s) missing before id {tail[2].id}")


def test_deleting_the_first_unsealed_row_after_the_sealed_ones_is_reported(db_session, keyring):
    write(db_session, keyring, 2)
    seal(db_session, keyring)
    tail = write(db_session, keyring, 2, "tail")
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == tail[0].id))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring, now=later())
    assert (report.ok, report.first_broken_id) == (False, tail[1].id)


def test_old_unsealed_rows_without_a_gap_verify_and_are_counted(db_session, keyring):
    write(db_session, keyring, 2)
    seal(db_session, keyring)
    write(db_session, keyring, 3, "tail")
    report = audit.verify_chain(db_session, keyring, now=later())
    assert report.ok
    assert (report.unsealed, report.stale_unsealed) == (3, 3)  # `icli audit verify` warns


def test_the_sealer_stops_before_a_gap_that_a_young_row_follows(db_session, keyring):
    # The middle id stands for a transaction that took its id and has not committed
    first, missing, third = write(db_session, keyring, 3)
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == missing.id))
    db_session.commit()
    assert seal(db_session, keyring) == 1
    assert [e.id for e in sealed(db_session)] == [first.id]
    # Past the grace, the gap is a rollback: the sealer goes on (and the chain keeps the ids)
    assert seal(db_session, keyring, now=third.at + audit.SEAL_GRACE
                + timedelta(seconds=1)) == 1
    assert [(e.id, e.seq) for e in sealed(db_session)] == [(first.id, 1), (third.id, 2)]
    assert audit.verify_chain(db_session, keyring, now=later()).ok


def test_deleting_a_sealed_row_after_a_gap_the_sealer_passed_is_still_a_gap(db_session, keyring):
    events = write(db_session, keyring, 4)
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == events[1].id))
    db_session.commit()
    seal(db_session, keyring, now=later())
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == events[2].id))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert (report.ok, report.first_broken_id) == (False, events[3].id)
    assert report.reason.startswith("gap")


def test_swapping_the_ids_of_two_sealed_rows_is_detected(db_session, keyring):
    events = write(db_session, keyring, 3)
    seal(db_session, keyring)
    a, b = events[0].id, events[1].id
    db_session.expunge_all()  # primary keys change under the session's feet
    for row_id, new_id in ((a, -1), (b, a), (-1, b)):
        db_session.execute(update(AuditEvent).where(AuditEvent.id == row_id).values(id=new_id))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert (report.ok, report.reason) == (False, "MAC mismatch")


def test_rows_written_before_the_upgrade_verify_and_the_new_rows_continue_their_chain(
        db_session, keyring):
    # Rows of chain format v1, as migration 0020 found them: seq and one MAC over both
    secret, prev = keyring.secret("audit"), ""
    old = write(db_session, keyring, 3, "v1")
    for seq, event in enumerate(old, start=1):
        event.seq, event.row_mac = seq, None
        event.mac = prev = mac(secret, *audit._v1_parts(prev, event))
    head = AuditHead(id=1, seq=3, mac=prev)
    head.sig = mac(secret, *audit._head_parts(head))
    db_session.add(head)
    db_session.commit()
    assert audit.verify_chain(db_session, keyring).ok

    new = write(db_session, keyring, 2, "v2")
    seal(db_session, keyring)
    assert [e.seq for e in sealed(db_session)] == [1, 2, 3, 4, 5]
    assert sealed(db_session)[3].id == new[0].id
    assert audit.verify_chain(db_session, keyring).ok
    db_session.execute(update(AuditEvent).where(AuditEvent.id == old[1].id)
                       .values(purpose="changed"))
    db_session.commit()
    assert audit.verify_chain(db_session, keyring).first_broken_id == old[1].id


def test_rows_sealed_while_verification_walks_are_not_taken_for_a_truncation(
        engine, db_session, keyring, monkeypatch):
    write(db_session, keyring, 3)
    seal(db_session, keyring)
    write(db_session, keyring, 2, "sealed during the walk")
    checked = audit._verifies

    def verifies_while_a_worker_seals(secret, prev_mac, event):
        if event.seq == 1:  # the head was read already: a worker seals the two new rows
            with Session(engine) as worker:
                seal(worker, keyring)
        return checked(secret, prev_mac, event)

    monkeypatch.setattr(audit, "_verifies", verifies_while_a_worker_seals)
    report = audit.verify_chain(db_session, keyring, batch=2)
    assert report.ok, report.reason
    assert (report.rows, report.unsealed) == (5, 0)


def test_a_head_put_back_over_rows_that_were_kept_is_reported(db_session, keyring):
    events = write(db_session, keyring, 4)
    seal(db_session, keyring)
    sealed_rows = sealed(db_session)
    head = db_session.get(AuditHead, 1)
    head.seq, head.mac = 2, sealed_rows[1].mac
    head.sig = mac(keyring.secret("audit"), *audit._head_parts(head))  # an older signed head
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert (report.ok, report.first_broken_id) == (False, events[-1].id)
    assert report.reason.startswith("gap: chain truncated")


# -- PostgreSQL: real concurrent transactions -----------------------------------------------


@pytest.fixture
def pg_sessions(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL (SQLite has one writer at a time)")
    connections = [engine.connect(), engine.connect()]
    sessions = []
    for connection in connections:
        # A regression (a writer waiting on another's lock) fails in a second, never hangs
        connection.execute(text("SET lock_timeout = '1s'"))
        connection.commit()
        sessions.append(Session(bind=connection))  # its own connection, keeping the setting
    yield sessions
    for session, connection in zip(sessions, connections, strict=True):
        session.close()
        connection.rollback()
        connection.execute(text("RESET lock_timeout"))
        connection.commit()
        connection.close()


def record_in(session, keyring, purpose: str) -> AuditEvent:
    return audit.record(session, keyring, audit.CLI, "decrypt", object_type="identity_records",
                        object_ids=[1], fields=["nom"], purpose=purpose)


def test_two_writers_in_open_transactions_do_not_wait_for_each_other(
        pg_sessions, db_session, keyring):
    first, second = pg_sessions
    write(db_session, keyring, 2)
    seal(db_session, keyring)  # a head exists: writers used to lock it
    record_in(first, keyring, "first")  # its transaction stays open
    record_in(second, keyring, "second")  # would wait for the first one's head lock
    second.commit()
    record_in(first, keyring, "first again")
    first.commit()
    assert len(rows(db_session)) == 5
    assert audit.verify_chain(db_session, keyring).ok


def test_the_sealer_waits_for_an_open_transaction_then_seals_in_id_order(
        pg_sessions, db_session, keyring):
    first, second = pg_sessions
    write(db_session, keyring, 1)
    seal(db_session, keyring)  # the sealer has passed an id: a gap after it is seen
    early = record_in(first, keyring, "early id, commits last")
    late = record_in(second, keyring, "later id, commits first")
    second.commit()
    assert early.id < late.id
    assert seal(db_session, keyring) == 0  # the gap before `late` is young: it may fill
    first.commit()
    assert seal(db_session, keyring) == 2
    assert [e.id for e in sealed(db_session)][1:] == [early.id, late.id]
    assert audit.verify_chain(db_session, keyring, now=later()).ok


def test_a_transaction_longer_than_the_grace_gets_its_row_sealed_after_larger_ids(
        pg_sessions, db_session, keyring):
    first, second = pg_sessions
    slow = record_in(first, keyring, "a long job")
    quick = record_in(second, keyring, "a request")
    second.commit()
    # The grace has passed: the gap is taken for a rollback, `quick` is sealed
    assert seal(db_session, keyring, now=later(1)) == 1
    first.commit()  # the long transaction ends after all
    assert seal(db_session, keyring) == 1
    assert [e.id for e in sealed(db_session)] == [quick.id, slow.id]
    report = audit.verify_chain(db_session, keyring, now=later())
    assert report.ok
    assert (report.rows, report.unsealed) == (2, 0)


def test_one_sealer_at_a_time(pg_sessions, db_session, keyring):
    first, second = pg_sessions
    write(db_session, keyring, 3)
    assert audit.seal(first, keyring) == 3  # not committed: it holds the head
    with pytest.raises(Exception, match="lock timeout"):
        audit.seal(second, keyring)
    second.rollback()
    first.commit()
    assert seal(second, keyring) == 0  # the rows were sealed once
    assert audit.verify_chain(db_session, keyring).ok
