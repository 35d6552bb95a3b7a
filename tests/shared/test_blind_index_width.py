"""The duplicate index is sized from the expected population (issue 16, item 9): several
people share each value in use at the expected size and at a tenth of it; changing the
setting re-indexes through the index-chain rotation, duplicates still found throughout."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from shared.config import ConfigError, load_settings
from shared.crypto import BLIND_INDEX_BITS, KeyRing, blind_index, index_bits_for
from shared.domain import audit
from shared.domain.beneficiaries import create_beneficiary, find_duplicates
from shared.encrypted import Vault
from shared.models import IdentityRecord
from tests.factories import canary_identity, reference_data
from tests.helpers import icli

SECRET = bytes(range(32))
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def synthetic_people(count: int) -> list[str]:
    """Distinct normalised "NAME|FIRSTNAME|birth date" values, as the index hashes them."""
    rng = random.Random(93)
    people: set[str] = set()
    while len(people) < count:
        name = "".join(rng.choices(LETTERS, k=rng.randint(4, 10)))
        first = "".join(rng.choices(LETTERS, k=rng.randint(3, 8)))
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
        people.add(f"{name}|{first}|{born.isoformat()}")
    return sorted(people)


def distribution(people: list[str], bits: int) -> tuple[float, float]:
    """(mean people per index value in use, share of the values in use held by one person)."""
    per_value = Counter(blind_index(SECRET, "name_birth", person, bits) for person in people)
    alone = sum(1 for n in per_value.values() if n == 1)
    return len(people) / len(per_value), alone / len(per_value)


def test_the_default_width_keeps_several_people_per_value_at_10000_and_100000():
    people = synthetic_people(100_000)
    bits = index_bits_for(100_000)
    assert bits == 12

    mean, alone = distribution(people[:10_000], bits)
    assert mean >= 2.5 and alone <= 0.27  # Poisson: 2.67 per value in use, 23 % alone
    mean, alone = distribution(people, bits)
    assert mean >= 24 and alone <= 0.01  # 24.4 per value in use

    # The former fixed 14 bits at 10,000 people: what the issue measured.
    mean, alone = distribution(people[:10_000], BLIND_INDEX_BITS)
    assert mean < 1.4 and alone > 0.7


@pytest.mark.parametrize("expected", [100, 1_000, 10_000, 100_000])
def test_any_expected_population_keeps_two_people_per_value_at_a_tenth_of_it(expected):
    mean, _alone = distribution(synthetic_people(expected // 10), index_bits_for(expected))
    assert mean >= 2


def test_the_expected_population_is_a_setting_with_the_departement_as_default(tmp_path):
    assert load_settings({"ICLI_INSTANCE": str(tmp_path)}).index_bits == 12
    small = load_settings({"ICLI_INSTANCE": str(tmp_path), "ICLI_EXPECTED_POPULATION": "10000"})
    assert (small.expected_population, small.index_bits) == (10_000, 9)
    for wrong in ("0", "99", "20000000", "beaucoup"):
        with pytest.raises(ConfigError, match="ICLI_EXPECTED_POPULATION"):
            load_settings({"ICLI_INSTANCE": str(tmp_path), "ICLI_EXPECTED_POPULATION": wrong})


def test_changing_the_setting_reindexes_through_the_rotation_and_duplicates_are_still_found(
        db_session, test_env, tmp_path):
    # Given people indexed 14 bits wide (before this setting) and 12 bits wide (default)
    path = tmp_path / "keyring.json"
    KeyRing.create_file(path)
    keyring = KeyRing.load(path)
    vault = Vault(db_session, keyring, audit.CLI)
    _north, _south, structures = reference_data(db_session)
    twins = {}
    for n in range(12):
        identity = dataclasses.replace(canary_identity(n), nom=f"Zyxcanari{LETTERS[n]}")
        bits = BLIND_INDEX_BITS if n % 2 else 12
        twins[n] = (identity, create_beneficiary(db_session, vault, identity,
                                                 structures["ssd"].id, index_bits=bits).id)
    db_session.commit()

    def found(n):
        return [r.id for r in find_duplicates(db_session, Vault(db_session, keyring, audit.CLI),
                                              twins[n][0])]

    assert all(found(n) == [twins[n][1]] for n in twins)  # both widths are searched
    db_session.commit()

    # When the expected population changes and the index chain is rotated
    env = {**test_env, "ICLI_KEYRING": str(path), "ICLI_EXPECTED_POPULATION": "10000"}
    result = icli(env, "keys", "rotate", "--chain", "index")
    assert "index: 12 row(s) moved to v1" in result.stdout

    # Then every record is 9 bits wide and each person is still found, only them
    db_session.expire_all()
    assert set(db_session.scalars(select(IdentityRecord.index_bits))) == {9}
    assert all(found(n) == [twins[n][1]] for n in twins)
    record = db_session.get(IdentityRecord, twins[0][1])
    assert record.idx_name_birth < 2**9 and record.idx_caf < 2**9
