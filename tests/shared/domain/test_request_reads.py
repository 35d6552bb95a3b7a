"""What a request reads once (issue 18): the reference entries once per transaction, a
record's data keys with one query for all its chains; neither may serve a stale value."""

from __future__ import annotations

from sqlalchemy import event, select

from shared.db import make_session_factory
from shared.domain import audit
from shared.domain.reference import reference_labels, save_reference_item
from shared.encrypted import Vault
from shared.models import IdentityRecord, ReferenceItem, Sheet
from tests.factories import canary_identity, make_sheet, reference_data


def statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _conn, _cursor, sql, *_rest: seen.append(sql))
    return seen


def test_reference_entries_are_read_once_per_transaction_and_again_after_it(engine, db_session,
                                                                           vault):
    seen = statements(engine)
    first = reference_labels(db_session)
    assert reference_labels(db_session, active_only=True) == first  # all active at first
    assert sum("FROM reference_items" in sql for sql in seen) == 1
    # Another process retires an entry and commits: the next transaction sees it
    code = next(iter(first["motif"]))
    with make_session_factory(engine)() as other:
        item = other.scalar(select(ReferenceItem).where(ReferenceItem.kind == "motif",
                                                        ReferenceItem.code == code))
        item.active = False
        other.commit()
    assert code in reference_labels(db_session, active_only=True)["motif"]  # same transaction
    db_session.commit()
    assert code not in reference_labels(db_session, active_only=True)["motif"]
    assert code in reference_labels(db_session)["motif"]  # old sheets still show it
    # A change made through the domain in this transaction is seen at once
    item = db_session.scalar(select(ReferenceItem).where(ReferenceItem.code == code))
    save_reference_item(db_session, vault, item, kind="motif", code=code,
                        label="Libellé changé", active=True)
    assert reference_labels(db_session, active_only=True)["motif"][code] == "Libellé changé"


def test_a_records_data_keys_come_with_one_query_for_its_chains(engine, db_session, keyring):
    _north, _south, structures = reference_data(db_session)
    sheet = make_sheet(db_session, Vault(db_session, keyring, audit.CLI), structures["ssd"],
                       canary_identity(1))
    db_session.commit()
    sheet = db_session.get(Sheet, sheet.id)
    record = db_session.scalar(select(IdentityRecord)
                               .where(IdentityRecord.beneficiary_id == sheet.beneficiary_id))
    vault = Vault(db_session, keyring, audit.CLI)
    seen = statements(engine)
    situation = vault.open(sheet, "situation_data", purpose="test")
    name = vault.open(record, "nom", purpose="test")
    assert situation is not None and name.reveal() == canary_identity(1).nom
    assert sum("FROM record_keys" in sql for sql in seen) == 1
