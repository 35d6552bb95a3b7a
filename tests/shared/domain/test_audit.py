"""shared/domain/audit.py: the sealed MAC chain names the first row edited, deleted or
reordered (the rows of these tests are sealed; unsealed rows: test_audit_sealer.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from shared.crypto import KeyRing, KeyVersion, mac
from shared.domain import audit
from shared.models import AuditEvent, AuditHead

EVENTS = 5


@pytest.fixture
def events(db_session, keyring) -> list[AuditEvent]:
    for n in range(EVENTS):
        audit.record(db_session, keyring, audit.Actor(n + 1, "user") if n % 2 else audit.CLI,
                     "decrypt", object_type="beneficiaries", object_ids=[n + 1, n + 10],
                     fields=["nom", "prenom"], purpose=f"test {n}")
    db_session.commit()
    assert audit.seal(db_session, keyring) == EVENTS
    db_session.commit()
    return reload(db_session)


def reload(session) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def tamper(session, event_id: int, **values) -> None:
    session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(**values))
    session.commit()
    session.expire_all()


def test_an_untouched_chain_of_five_events_verifies(db_session, keyring, events):
    assert [e.seq for e in events] == list(range(1, EVENTS + 1))
    report = audit.verify_chain(db_session, keyring)
    assert report.ok
    assert report.rows == EVENTS
    assert report.first_broken_id is None


def test_an_empty_chain_verifies(db_session, keyring):
    report = audit.verify_chain(db_session, keyring)
    assert report.ok
    assert report.rows == 0


def test_the_head_follows_the_last_row(db_session, keyring, events):
    head = db_session.get(AuditHead, 1)
    assert (head.seq, head.mac) == (events[-1].seq, events[-1].mac)
    assert len({e.mac for e in events}) == EVENTS


def test_verification_walks_the_chain_in_small_batches(db_session, keyring, events):
    assert audit.verify_chain(db_session, keyring, batch=2).ok
    tamper(db_session, events[3].id, purpose="changed")
    assert audit.verify_chain(db_session, keyring, batch=2).first_broken_id == events[3].id


EDITS = {
    "purpose": lambda e: {"purpose": e.purpose + " (modifié)"},
    "action": lambda e: {"action": "export"},
    "object_ids": lambda e: {"object_ids": "999"},
    "object_ids_reordered": lambda e: {"object_ids": ",".join(reversed(e.object_ids.split(",")))},
    "at": lambda e: {"at": e.at + timedelta(seconds=1)},
    "at_one_microsecond": lambda e: {"at": e.at + timedelta(microseconds=1)},
    "fields": lambda e: {"fields": "nom"},
    "object_type": lambda e: {"object_type": "sheets"},
    "actor_id": lambda e: {"actor_id": 77},
    "actor_label": lambda e: {"actor_label": "worker"},
    "mac": lambda e: {"mac": "0" * 64},
    "row_mac": lambda e: {"row_mac": "0" * 64},
    "row_mac_removed": lambda e: {"row_mac": None},
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
@pytest.mark.parametrize("index", [0, 2, EVENTS - 1], ids=["first", "middle", "last"])
def test_editing_any_column_of_a_row_names_that_row(db_session, keyring, events, edit, index):
    target = events[index]
    tamper(db_session, target.id, **edit(target))
    report = audit.verify_chain(db_session, keyring)
    assert not report.ok
    assert report.first_broken_id == target.id
    assert report.rows == index + 1


def test_an_edited_row_given_a_valid_new_mac_still_breaks_the_chain_at_the_next_row(
        db_session, keyring, events):
    # Even a writer holding the audit secret cannot rewrite one row in place: the next
    # row's MAC covers the old MAC.
    target = events[2]
    target.purpose = "réécrit"
    target.row_mac = audit._row_mac(keyring.secret("audit"), target)
    target.mac = mac(keyring.secret("audit"), *audit._chain_parts(events[1].mac, target))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert report.first_broken_id == events[3].id
    assert report.rows == 4


def test_deleting_a_middle_row_names_the_next_row(db_session, keyring, events):
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == events[2].id))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert not report.ok
    assert report.first_broken_id == events[3].id
    assert report.reason.startswith("gap")
    assert report.first_broken_at == events[3].at


def test_deleting_the_first_row_names_the_second(db_session, keyring, events):
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == events[0].id))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert report.first_broken_id == events[1].id


def test_deleting_the_last_row_breaks_the_chain(db_session, keyring, events):
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == events[-1].id))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert not report.ok
    assert report.first_broken_id == events[-2].id  # "truncated after this row"
    assert "truncated" in report.reason


def test_deleting_every_row_breaks_the_chain(db_session, keyring, events):
    db_session.execute(delete(AuditEvent))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert not report.ok
    assert report.reason == "gap: chain emptied"


def test_deleting_the_last_row_and_the_head_breaks_the_chain(db_session, keyring, events):
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == events[-1].id))
    db_session.execute(delete(AuditHead))
    db_session.commit()
    assert not audit.verify_chain(db_session, keyring).ok


def test_swapping_the_sequence_numbers_of_two_rows_breaks_the_chain(db_session, keyring, events):
    second, third = events[1], events[2]
    tamper(db_session, second.id, seq=-1)  # seq is unique: swap through a free value
    tamper(db_session, third.id, seq=2)
    tamper(db_session, second.id, seq=3)
    report = audit.verify_chain(db_session, keyring)
    assert not report.ok
    assert report.first_broken_id == third.id  # now first in order, its MAC no longer fits
    assert report.reason.startswith("order")


def test_a_different_audit_secret_breaks_the_first_row(db_session, keyring, events):
    other = KeyRing([KeyVersion("audit", 1, b"\x07" * 32, "2026-01-01")], {"audit": 1})
    report = audit.verify_chain(db_session, other)
    assert not report.ok
    assert report.first_broken_id == events[0].id
    assert report.rows == 1


def test_new_rows_continue_a_chain_across_transactions(db_session, keyring, events):
    event = audit.record(db_session, keyring, audit.WORKER, "document_generated",
                         object_type="sheets", object_ids=["12"], purpose="test")
    db_session.commit()
    assert event.seq is None  # written without touching the head
    audit.seal(db_session, keyring)
    db_session.commit()
    assert event.seq == EVENTS + 1
    report = audit.verify_chain(db_session, keyring)
    assert report.ok
    assert report.rows == EVENTS + 1


def test_a_long_purpose_is_cut_to_its_column_and_still_verifies(db_session, keyring):
    event = audit.record(db_session, keyring, audit.CLI, "decrypt", purpose="p" * 500)
    db_session.commit()
    assert event.purpose == "p" * 200
    assert audit.verify_chain(db_session, keyring).ok


def test_an_edited_row_is_reported_as_a_mac_mismatch(db_session, keyring, events):
    tamper(db_session, events[1].id, purpose="changed")
    assert audit.verify_chain(db_session, keyring).reason == "MAC mismatch"


def test_purging_old_rows_keeps_the_rest_of_the_chain_verifiable(db_session, keyring, events):
    # Given the first three rows are older than the retention cutoff
    deleted = audit.purge_before(db_session, keyring, audit.WORKER, events[3].at)
    db_session.commit()
    # Then verification starts from the signed anchor: the kept rows and the purge row verify
    assert deleted == 3
    head = db_session.get(AuditHead, 1)
    assert (head.anchor_seq, head.anchor_mac) == (events[2].seq, events[2].mac)
    rows = reload(db_session)
    assert [r.id for r in rows[:2]] == [events[3].id, events[4].id]
    assert (rows[-1].action, rows[-1].seq) == ("audit_purged", None)  # sealed at the next step
    report = audit.verify_chain(db_session, keyring)
    assert report.ok
    assert (report.rows, report.unsealed) == (3, 1)
    audit.seal(db_session, keyring)
    db_session.commit()
    assert reload(db_session)[-1].action == "audit_purged"
    assert audit.verify_chain(db_session, keyring).ok


def test_after_a_purge_deleting_the_first_kept_row_is_still_detected(db_session, keyring, events):
    audit.purge_before(db_session, keyring, audit.WORKER, events[2].at)
    db_session.commit()
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == events[2].id))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert report.first_broken_id == events[3].id
    assert report.reason.startswith("gap")


def test_moving_the_anchor_forward_without_the_audit_secret_is_detected(
        db_session, keyring, events):
    audit.purge_before(db_session, keyring, audit.WORKER, events[1].at)
    db_session.commit()
    # An intruder deletes two more old rows and points the anchor past them
    db_session.execute(delete(AuditEvent).where(AuditEvent.seq <= events[2].seq))
    db_session.execute(update(AuditHead).values(anchor_seq=events[2].seq,
                                                anchor_mac=events[2].mac))
    db_session.commit()
    report = audit.verify_chain(db_session, keyring)
    assert not report.ok
    assert report.reason == "retention anchor forged"


def test_a_broken_chain_is_never_purged(db_session, keyring, events):
    tamper(db_session, events[0].id, purpose="changed")
    with pytest.raises(audit.ChainBrokenError):
        audit.purge_before(db_session, keyring, audit.WORKER, events[4].at)
    db_session.rollback()
    assert len(reload(db_session)) == EVENTS
