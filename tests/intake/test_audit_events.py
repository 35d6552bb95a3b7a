"""Each kind of security event writes an audit row (docs/security.md, rule 11), ids only."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from shared.crypto import IntegrityError
from shared.domain import audit
from shared.encrypted import Vault
from shared.models import AuditEvent, GeneratedDocument, IdentityRecord, User
from tests.factories import PASSWORD, canary_values
from tests.helpers import client_as, create_account, csrf_token


def rows(db_session, action: str, purpose: str | None = None) -> list[AuditEvent]:
    db_session.expire_all()
    query = select(AuditEvent).where(AuditEvent.action == action)
    if purpose is not None:
        query = query.where(AuditEvent.purpose == purpose)
    return list(db_session.scalars(query))


def test_login_success_and_failure_are_audited(client, auth, world, db_session):
    auth.login("referent@test.invalid", "wrong-password-123456")
    (failed,) = rows(db_session, "login_failed")
    assert failed.actor_id is None and "referent" not in failed.purpose
    client.post("/deconnexion")
    auth.login("referent@test.invalid", PASSWORD)
    (login,) = rows(db_session, "login")
    assert login.object_ids == str(world["users"]["referent"].id)


def test_account_creation_with_its_role_deactivation_and_reset_are_audited(
        app, world, db_session):
    admin = client_as(app, "admin")
    create_account(admin, email="deleguee@test.invalid", full_name="Déléguée", role="dpo",
                   structure_id="0")
    user = db_session.scalar(select(User).where(User.email == "deleguee@test.invalid"))
    assert user.has_role("dpo")
    (created,) = rows(db_session, "user_created")
    assert (created.object_ids, created.fields) == (str(user.id), "dpo")
    token = csrf_token(admin, "/admin/utilisateurs")
    admin.post(f"/admin/utilisateurs/{user.id}/desactiver", data={"csrf_token": token})
    admin.post(f"/admin/utilisateurs/{user.id}/reinitialiser", data={"csrf_token": token})
    assert rows(db_session, "user_deactivated")[0].object_ids == str(user.id)
    assert rows(db_session, "password_reset")[0].object_ids == str(user.id)


def test_a_download_is_audited(app, world, db_session, vault):
    document = GeneratedDocument(meeting_id=world["meeting"].id, kind="agenda",
                                 content_version=1, filename="odj.docx", size=3, body=b"",
                                 media_type="application/octet-stream")
    db_session.add(document)
    db_session.flush()
    vault.seal_blob(document, "body", b"odj")
    db_session.commit()
    response = client_as(app, "facilitator").get(f"/seances/documents/{document.id}")
    assert response.data == b"odj"
    (row,) = rows(db_session, "document_downloaded")
    assert row.object_ids == str(document.id)
    assert row.actor_id == world["users"]["facilitator"].id


def test_a_decryption_names_who_which_records_which_fields_and_why(
        db_session, keyring, world):
    record = db_session.scalars(select(IdentityRecord)).first()
    Vault(db_session, keyring, audit.Actor(world["users"]["referent"].id)).open_many(
        [record], ["nom", "prenom"], purpose="consultation")
    db_session.commit()
    (row,) = rows(db_session, "decrypt", "consultation")
    assert (row.actor_id, row.object_type, row.object_ids, row.fields, row.purpose) == (
        world["users"]["referent"].id, "identity_records", str(record.id), "nom,prenom",
        "consultation")


def test_an_integrity_failure_is_audited_even_though_the_caller_rolls_back(
        db_session, keyring, world):
    # Given a tampered ciphertext (another field's, from the same record)
    record = db_session.scalars(select(IdentityRecord)).first()
    db_session.execute(update(IdentityRecord).where(IdentityRecord.id == record.id)
                       .values(nom=record.prenom))
    db_session.commit()
    db_session.expire_all()
    record = db_session.get(IdentityRecord, record.id)
    # When a reader hits it, and rolls back as callers do
    with pytest.raises(IntegrityError):
        Vault(db_session, keyring, audit.CLI).open(record, "nom", purpose="consultation")
    db_session.rollback()
    # Then the failure and the attempted decryption were written in their own transaction,
    # ids only
    (row,) = rows(db_session, "integrity_failure")
    assert (row.object_type, row.object_ids, row.fields) == ("identity_records",
                                                             str(record.id), "nom")
    assert len(rows(db_session, "decrypt", "consultation")) == 1
    assert audit.verify_chain(db_session, keyring).ok
    columns = " ".join(str(getattr(row, c.key)) for c in AuditEvent.__table__.columns)
    assert record.prenom not in columns
    for identity in world["identities"]:
        assert not any(value in columns for value in canary_values(identity))
