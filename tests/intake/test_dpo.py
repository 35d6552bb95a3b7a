"""The DPO reads the audit trail (filters, pages, CSV export) and the retention report."""

from __future__ import annotations

import csv
import html
import io
from datetime import datetime, timedelta

from sqlalchemy import select

from shared.db import utc_to_paris, utcnow
from shared.domain import audit, audit_log
from shared.models import AuditEvent, IdentityRecord
from tests.factories import canary_values
from tests.helpers import client_as


def no_personal_data(body: str, world) -> None:
    for identity in world["identities"]:
        for value in canary_values(identity):
            assert value not in body
    for sheet in world["sheets"]:
        assert sheet.beneficiary.pseudonym not in body


def test_the_dpo_filters_the_trail_by_sheet_reference(app, world, db_session, keyring):
    # Given a decryption of the first sheet's person's identity, and one of another person
    first, second = world["sheets"]
    records = {s.id: db_session.scalar(select(IdentityRecord).where(
        IdentityRecord.beneficiary_id == s.beneficiary_id)) for s in (first, second)}
    for sheet in (first, second):
        audit.record(db_session, keyring, audit.Actor(world["users"]["referent"].id), "decrypt",
                     object_type="identity_records", object_ids=[records[sheet.id].id],
                     fields=["nom"], purpose=f"consultation {sheet.id}")
    db_session.commit()
    client = client_as(app, "dpo")
    body = client.get("/dpo/journal", query_string={"reference": first.reference.lower()}
                      ).get_data(as_text=True)
    assert f"consultation {first.id}" in body
    assert f"consultation {second.id}" not in body
    assert "Test referent" in body  # the professional who acted is named
    no_personal_data(body, world)


def test_filters_by_user_action_and_dates_and_pages(app, world, db_session, keyring):
    admin = world["users"]["admin"]
    for n in range(audit_log.PAGE_SIZE + 5):
        audit.record(db_session, keyring, audit.Actor(admin.id), "user_created",
                     object_type="users", object_ids=[n + 1000])
    db_session.commit()
    today = utc_to_paris(utcnow()).date()  # the journal's days are Paris days
    filters = audit_log.Filters(user_id=admin.id, action="user_created",
                                since=today - timedelta(days=1), until=today)
    rows, total = audit_log.search(db_session, filters, page=2)
    assert total == audit_log.PAGE_SIZE + 5 and len(rows) == 5
    assert audit_log.search(db_session, audit_log.Filters(
        user_id=admin.id, since=today + timedelta(days=1)))[1] == 0
    client = client_as(app, "dpo")
    body = client.get("/dpo/journal", query_string={"user_id": admin.id,
                                                    "action": "user_created", "page": 2}
                      ).get_data(as_text=True)
    assert "Page 2 sur 2" in body and "Page précédente" in body
    assert "1004" in body and "1054" not in body  # newest first: page 2 holds the oldest
    # A date typed wrong is named, and the other filters still apply
    audit.record(db_session, keyring, audit.Actor(admin.id), "user_deactivated",
                 object_type="users", object_ids=[999])
    db_session.commit()
    body = client.get("/dpo/journal", query_string={"action": "user_deactivated",
                                                    "since": "31/02/2026"}).get_data(as_text=True)
    assert "N'est pas une date valide." in html.unescape(body)
    table = body.split("<tbody>", 1)[1]
    assert "Compte désactivé" in table and "Compte créé" not in table
    # Actions are offered and shown in French, their code beside for the record
    assert '<option value="user_created">Compte créé</option>' in html.unescape(body)
    assert 'title="user_deactivated"' in table
    assert audit_log.action_label("meeting_convene").startswith("Séance : convoquer")
    assert audit_log.action_label("sheet_submit") == "Fiche : soumettre"
    assert audit_log.action_label("unknown_code") == "unknown_code"


def test_the_csv_export_holds_the_filtered_rows_and_is_audited(app, world, db_session):
    client = client_as(app, "dpo")
    response = client.get("/dpo/journal.csv", query_string={"action": "login"})
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")),
                           delimiter=";"))
    assert rows[0] == audit_log.CSV_HEADER
    assert {r[4] for r in rows[1:]} == {"login"}
    assert str(world["users"]["dpo"].id) in {r[6] for r in rows[1:]}
    no_personal_data(response.get_data(as_text=True), world)
    db_session.expire_all()
    (export,) = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "audit_exported")).all()
    assert export.actor_id == world["users"]["dpo"].id
    assert "action=login" in export.purpose


def test_the_trail_its_day_filters_and_its_export_are_in_paris_time(
        app, world, db_session, keyring, monkeypatch):
    # Given a row written at 22:30:05 UTC on 14 July: 00:30:05 on 15 July in Paris
    monkeypatch.setattr(audit, "utcnow", lambda: datetime(2026, 7, 14, 22, 30, 5))
    audit.record(db_session, keyring, audit.Actor(world["users"]["admin"].id),
                 "user_deactivated", object_type="users", object_ids=[999])
    db_session.commit()
    client = client_as(app, "dpo")
    body = client.get("/dpo/journal", query_string={"action": "user_deactivated"}
                      ).get_data(as_text=True)
    assert "15/07/2026 à 00:30:05" in body
    assert "UTC" not in body and "temps universel" not in body
    # The days typed in the filters are Paris days
    for since, until, found in (("2026-07-15", "2026-07-15", True),
                                ("2026-07-14", "2026-07-14", False)):
        table = client.get("/dpo/journal", query_string={
            "action": "user_deactivated", "since": since, "until": until}
        ).get_data(as_text=True).split("<tbody>", 1)[1]
        assert ("Compte désactivé" in table) is found, (since, until)
    csv_text = client.get("/dpo/journal.csv", query_string={"action": "user_deactivated"}
                          ).get_data(as_text=True)
    assert "2026-07-15 00:30:05" in csv_text and "UTC" not in csv_text


def test_the_dpo_sees_the_retention_report_without_personal_data(app, world):
    body = client_as(app, "dpo").get("/dpo/conservation").get_data(as_text=True)
    assert "Prochaine purge" in body and "12 mois" in body
    no_personal_data(body, world)


def test_the_dpo_cannot_open_sheets_or_sessions(app, world):
    client = client_as(app, "dpo")
    assert client.get(f"/fiches/{world['sheets'][0].id}").status_code in (403, 404)
    assert client.get("/seances/").status_code == 403


def test_the_journal_names_tables_fields_and_reveal_reasons_in_french(app, world, db_session,
                                                                      keyring):
    audit.record(db_session, keyring, audit.Actor(world["users"]["facilitator"].id), "decrypt",
                 object_type="identity_records", object_ids=[7], fields=["nom", "date_naissance"],
                 purpose="levée du pseudonyme (motif : événement 22)")
    audit.record(db_session, keyring, audit.CLI, "decrypt", object_type="sheets",
                 object_ids=[7], fields=["situation_data", "sensitive_data"], purpose="test")
    db_session.commit()
    body = html.unescape(client_as(app, "dpo").get("/dpo/journal").get_data(as_text=True))
    table = body.split("<tbody>", 1)[1]
    assert '<td title="identity_records">identité</td>' in table
    assert ">nom, date naissance</td>" in table and ">situation, détails sensibles</td>" in table
    assert "(motif écrit dans l'historique de la fiche, événement n° 22)" in table
    assert "motif : événement" not in table
