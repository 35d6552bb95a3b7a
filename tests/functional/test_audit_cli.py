"""`icli audit verify` as an administrator runs it: a real subprocess on the test instance."""

from datetime import timedelta

from sqlalchemy import delete, update

from shared.domain import audit
from shared.models import AuditEvent
from tests.helpers import icli


def broken(test_env, row: AuditEvent, reason: str) -> None:
    result = icli(test_env, "audit", "verify", check=False)
    assert result.returncode != 0
    assert f"row id={row.id} at {row.at:%Y-%m-%d %H:%M:%S}: {reason}" in result.stderr


def test_an_untouched_chain_passes(test_env, chain):
    result = icli(test_env, "audit", "verify")
    assert "6 row(s)" in result.stdout


def test_an_edited_row_is_named(test_env, db_session, chain):
    db_session.execute(update(AuditEvent).where(AuditEvent.id == chain[2].id)
                       .values(purpose="autre motif"))
    db_session.commit()
    broken(test_env, chain[2], "MAC mismatch")


def test_a_deleted_row_is_named_by_the_row_after_it(test_env, db_session, chain):
    db_session.execute(delete(AuditEvent).where(AuditEvent.id == chain[3].id))
    db_session.commit()
    broken(test_env, chain[4], "gap")


def test_two_swapped_rows_are_named(test_env, db_session, chain):
    # seq is unique: swap through a free value
    swaps = ((chain[1].id, -1), (chain[2].id, chain[1].seq), (chain[1].id, chain[2].seq))
    for row_id, seq in swaps:
        db_session.execute(update(AuditEvent).where(AuditEvent.id == row_id).values(seq=seq))
    db_session.commit()
    broken(test_env, chain[2], "order")


def test_rows_left_unsealed_for_long_are_verified_with_a_warning(test_env, db_session, keyring,
                                                                 chain):
    # No worker sealed for ten minutes: the rows are checked by their own MAC, and said so
    for n in range(2):
        event = audit.record(db_session, keyring, audit.CLI, "decrypt", object_ids=[n],
                             fields=["nom"], purpose="sans worker")
        event.at -= timedelta(minutes=10)
        event.row_mac = audit._row_mac(keyring.secret("audit"), event)
    db_session.commit()
    result = icli(test_env, "audit", "verify")
    assert "audit chain verified: 8 row(s) (2 not sealed yet)" in result.stdout
    assert "2 row(s) written more than 2 min ago are not sealed yet: is a worker running?" \
        in result.stderr
