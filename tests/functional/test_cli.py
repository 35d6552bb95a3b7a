"""The `icli` command as an administrator runs it, with leak scans of everything it touched."""

import csv

import pytest
from sqlalchemy import select, update

from shared.models import IdentityRecord, User
from tests.factories import canary_identity, canary_values
from tests.helpers import database_dump, icli, read_elsewhere, redis_dump

HEADER = ["nom", "prenom", "date_naissance", "numero_caf", "identifiant_france_travail",
          "adresse", "code_postal", "commune", "telephone", "email"]


def people_csv(path, good, bad_rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for identity in good:
            writer.writerow([getattr(identity, k) for k in HEADER])
        writer.writerows(bad_rows)


def instance_files(instance) -> bytes:
    return read_elsewhere(p for p in instance.rglob("*") if p.is_file())


def test_demo_with_people_then_check_leaves_no_value_anywhere(
        test_env, engine, settings, redis, tmp_path, instance_dir):
    good = [canary_identity(n) for n in range(3)]
    bad_date = [getattr(canary_identity(7), k) for k in HEADER]
    bad_date[2] = "31/02/1980"  # no such day (JJ/MM/AAAA is read too)
    bad_postcode = [getattr(canary_identity(8), k) for k in HEADER]
    bad_postcode[6] = "9320"
    short_row = ["Zyxcanari9", "Qwertinette9"]
    people = tmp_path / "people.csv"
    people_csv(people, good, [bad_date, bad_postcode, short_row])

    result = icli(test_env, "demo", "--people", str(people), "--password",
                  "demo-password-2026", "--sheets", "3")
    assert "3 people imported, 3 line(s) refused" in result.stdout
    assert "line 5: refused (date_naissance" in result.stderr
    assert "line 6: refused (code_postal" in result.stderr
    assert "line 7: refused (10 colonnes attendues" in result.stderr
    refused = [canary_identity(7), canary_identity(8)]
    output = result.stdout + result.stderr
    for identity in good + refused:
        assert not any(value in output for value in canary_values(identity))

    checked = icli(test_env, "check")
    assert "identity_records             3 rows" in checked.stdout
    assert "all protected values decrypt" in checked.stdout

    haystack = database_dump(engine, settings) + instance_files(instance_dir) + redis_dump(redis)
    for identity in good + refused:
        for value in canary_values(identity):
            assert value.encode() not in haystack, "a personal value was found in clear"


def test_check_names_a_tampered_value_by_id_and_fails(test_env, engine, db_session):
    icli(test_env, "demo", "--password", "demo-password-2026", "--sheets", "2")
    first, second = db_session.scalars(select(IdentityRecord).order_by(IdentityRecord.id)).all()[:2]
    db_session.execute(update(IdentityRecord).where(IdentityRecord.id == first.id)
                       .values(nom=second.nom))  # a ciphertext moved to another row
    db_session.commit()
    result = icli(test_env, "check", check=False)
    assert result.returncode != 0
    assert f"FAILED identity_records id={first.id} field=nom" in result.stderr


def test_demo_refuses_a_database_that_has_accounts(test_env, engine):
    icli(test_env, "demo", "--password", "demo-password-2026", "--sheets", "1")
    again = icli(test_env, "demo", "--sheets", "1", check=False)
    assert again.returncode != 0 and "qu'une base vide" in again.stderr


def test_demo_prints_a_random_password_once_when_none_is_given(test_env, engine):
    result = icli(test_env, "demo", "--sheets", "1")
    assert "Password of every demo account (shown once):" in result.stdout


def test_demo_has_a_dpo_account_listed_with_the_others(test_env, engine, app):
    from tests.helpers import AuthActions

    result = icli(test_env, "demo", "--password", "demo-password-2026", "--sheets", "0")
    assert "dpo@icli.example" in result.stdout
    assert "Délégué·e à la protection des données" in result.stdout
    dpo = app.test_client()  # the same password as every demo account
    # its second factor enrolled at this first login, its recovery codes shown
    signed_in = AuthActions(dpo).login("dpo@icli.example", "demo-password-2026")
    assert "Second facteur activé" in signed_in.get_data(as_text=True)
    assert dpo.get("/dpo/journal").status_code == 200


def test_users_create_deactivate_and_reset(test_env, engine, db_session, app):
    icli(test_env, "demo", "--password", "demo-password-2026", "--sheets", "0")
    created = icli(test_env, "users", "create", "--email", "dir@test.invalid", "--name",
                   "Directrice Test", "--role", "director", "--institution",
                   "france_travail")
    password = created.stdout.strip().rsplit(" ", 1)[1]
    user = db_session.scalar(select(User).where(User.email == "dir@test.invalid"))
    assert user.must_change_password and user.has_role("director")
    from tests.helpers import AuthActions

    assert AuthActions(app.test_client()).login("dir@test.invalid", password).status_code == 302
    icli(test_env, "users", "deactivate", "dir@test.invalid")
    db_session.expire_all()
    assert db_session.get(User, user.id).active is False
    reset = icli(test_env, "users", "reset", "dir@test.invalid")
    assert "one-time password" in reset.stdout
    refused = icli(test_env, "users", "create", "--email", "x@test.invalid", "--name", "X",
                   "--role", "referent", check=False)
    assert refused.returncode != 0 and "structure" in refused.stderr


def test_worker_keyring_holds_no_identity_key_and_serves_the_worker(test_env, keyring, tmp_path):
    import json

    from shared.crypto import KeyNotFoundError, KeyRing

    out = tmp_path / "keyring_worker.json"
    icli(test_env, "keys", "worker-keyring", "--out", str(out))
    assert out.stat().st_mode & 0o777 == 0o600
    assert set(json.loads(out.read_text())["chains"]) == {"content", "audit", "jobs"}
    ring = KeyRing.load(out, ("content", "audit", "jobs"))
    with pytest.raises(KeyNotFoundError):
        ring.primary_version("identity")
    again = icli(test_env, "keys", "worker-keyring", "--out", str(out), check=False)
    assert again.returncode != 0 and "not overwritten" in again.stderr
