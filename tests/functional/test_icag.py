"""ICAG through the facilitator's forms: entry with its diagnostic partagé, refusal while the
person disagrees, renewal, exit with its reason, the minutes and the term reminder."""

import email
import email.policy
import io
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta
from docx import Document
from sqlalchemy import select

from generator import mail
from shared.demo import demo_values
from shared.domain import access_export, icag, notifications
from shared.domain.meetings import create_meeting, inscribe_sheet
from shared.domain.sheets import write_values
from shared.models import (
    AuditEvent,
    GlobalSupport,
    Meeting,
    Member,
    Notification,
)
from tests.factories import PLANNED_ON, canary_identity, canary_values, make_sheet
from tests.helpers import docx_xml, flash_text, minutes_docx, post, reload


def _icag_sheet(db_session, vault, world, n, position="accord"):
    return make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(40 + n),
                      author_id=world["users"]["referent"].id, status="recevable",
                      values={**demo_values(n), "position_personne": position})


def _held(db_session, meeting):
    meeting.state = "tenue"
    db_session.commit()


def test_an_ag_entry_records_its_dates_and_diagnostic_and_reaches_the_minutes(
        facilitator, world, db_session, vault, settings, redis):
    # Given a session with an ICAG entry for a person who agrees, and one who disagrees
    meeting = world["meeting"]
    agrees = _icag_sheet(db_session, vault, world, 0)
    disagrees = _icag_sheet(db_session, vault, world, 1)
    items = {sheet.id: inscribe_sheet(db_session, vault, meeting, sheet, "15:30", part="icag",
                                      icag_kind="entree")
             for sheet in (agrees, disagrees)}
    # who changed her mind after the inscription (which refuses an entry in disagreement too)
    write_values(vault, disagrees, {**demo_values(1), "position_personne": "desaccord"})
    db_session.commit()
    _held(db_session, meeting)
    url = f"/seances/{meeting.id}"
    ali = world["structures"]["ali"]
    start = meeting.day + timedelta(days=1)
    diagnostic = date.today() - timedelta(days=10)
    form = {"started_on": start.isoformat(), "diagnostic_on": diagnostic.isoformat(),
            "diagnostic_structure_id": str(ali.id), "categories": ["sante", "mobilite"]}

    # When the facilitator records the entry of the person who disagrees, it is refused
    entry_url = f"{url}/points/{items[disagrees.id].id}/icag"
    page = post(facilitator, entry_url, form, entry_url)
    assert "la personne est « en désaccord »" in flash_text(page)
    assert f"fiche {disagrees.reference}" in flash_text(page)
    assert db_session.scalars(select(GlobalSupport)).all() == []

    # An entry without its diagnostic's categories is refused too
    entry_url = f"{url}/points/{items[agrees.id].id}/icag"
    page = post(facilitator, entry_url, {**form, "categories": []}, entry_url)
    assert "cochez au moins une catégorie" in flash_text(page)

    # Then the entry of the person who agrees is recorded with a 12-month term
    page = post(facilitator, entry_url, form, entry_url)
    assert f"enregistré pour {agrees.reference}" in flash_text(page)
    support = db_session.scalars(select(GlobalSupport)).one()
    assert support.started_on == start
    assert support.term_ends_on == start + relativedelta(months=12) - timedelta(days=1)
    assert (support.diagnostic_on, support.diagnostic_structure_id) == (diagnostic, ali.id)
    assert icag.diagnostic_categories(vault, support) == ["sante", "mobilite"]
    assert b"sante" not in (support.diagnostic_categories or "").encode()  # encrypted
    assert "icag_entree" in set(db_session.scalars(select(AuditEvent.action)))
    page = post(facilitator, entry_url, form, entry_url)  # a second entry: nothing new
    assert len(db_session.scalars(select(GlobalSupport)).all()) == 1

    # And the minutes show the entry, its term and diagnostic, by reference only
    body = minutes_docx(facilitator, db_session, vault, settings, redis, meeting)
    cells = [c.text for t in Document(io.BytesIO(body)).tables for r in t.rows for c in r.cells]
    row = cells.index(agrees.reference, cells.index("Motif de sortie"))
    assert cells[row:row + 5] == [agrees.reference, "Entrée", start.strftime("%d/%m/%Y"),
                                  support.term_ends_on.strftime("%d/%m/%Y"),
                                  f"{diagnostic:%d/%m/%Y} – {ali.name}"]
    xml = docx_xml(body)
    assert "Santé" not in xml  # the diagnostic's freins stay out of the archive
    for n in (40, 41):
        for value in canary_values(canary_identity(n)):
            assert value not in xml


def test_a_renewal_moves_the_term_and_an_exit_records_its_reason(
        facilitator, world, db_session, vault):
    # Given a person in AG since an earlier session
    meeting = world["meeting"]
    sheet = _icag_sheet(db_session, vault, world, 2)
    entry = inscribe_sheet(db_session, vault, meeting, sheet, "15:30", part="icag",
                           icag_kind="entree")
    _held(db_session, meeting)
    support = icag.record_entry(db_session, vault, meeting, entry.id,
                                started_on=meeting.day, diagnostic_on=date.today(),
                                diagnostic_structure_id=world["structures"]["ali"].id,
                                categories=["logement"])
    first_term = support.term_ends_on
    db_session.commit()
    later = create_meeting(db_session, world["north"], meeting.starts_at + timedelta(days=28),
                           "Salle 3", today=PLANNED_ON)
    # (the referent files a new sheet for the same person: the renewal's saisine)
    renewal = inscribe_sheet(db_session, vault, later, _icag_sheet(db_session, vault, world, 2),
                             "14:00", part="icag", icag_kind="renouvellement")
    _held(db_session, later)
    url = f"/seances/{later.id}"

    # When the renewal is recorded, the term moves twelve months on
    page = post(facilitator, f"{url}/points/{renewal.id}/icag", {},
                f"{url}/points/{renewal.id}/icag")
    assert "renouvellement" in flash_text(page)
    support = reload(db_session, GlobalSupport, support.id)
    assert support.term_ends_on == first_term + relativedelta(months=12)

    # Then an exit needs a reason, and keeps it
    last = create_meeting(db_session, world["north"], later.starts_at + timedelta(days=28),
                          "Salle 4", today=PLANNED_ON)
    leave = inscribe_sheet(db_session, vault, last, _icag_sheet(db_session, vault, world, 2),
                           "14:00", part="icag", icag_kind="sortie")
    _held(db_session, last)
    exit_url = f"/seances/{last.id}/points/{leave.id}/icag"
    page = post(facilitator, exit_url, {"ended_on": last.day.isoformat(), "reason": ""},
                exit_url)
    assert "Indiquez le motif de sortie" in flash_text(page)
    assert reload(db_session, GlobalSupport, support.id).ended_on is None
    page = post(facilitator, exit_url, {"ended_on": last.day.isoformat(),
                                        "reason": "emploi_formation"}, exit_url)
    support = reload(db_session, GlobalSupport, support.id)
    assert (support.ended_on, support.exit_reason) == (last.day, "emploi_formation")
    assert [s.kind for s in support.steps] == ["entree", "renouvellement", "sortie"]
    assert icag.running_support(db_session, sheet.beneficiary_id) is None

    # And the person's right of access shows the AG with its diagnostic
    data = access_export.collect(db_session, vault, sheet.beneficiary, sheet.structure_id)
    exported = next(f for f in data["fiches"] if f["reference"] == sheet.reference)
    assert exported["accompagnement_global"] == [{
        "debut": meeting.day.isoformat(), "terme": support.term_ends_on.isoformat(),
        "fin": last.day.isoformat(), "motif_de_sortie": "Accès à l'emploi ou à une formation",
        "diagnostic_partage": {"date": date.today().isoformat(),
                               "structure": world["structures"]["ali"].name,
                               "freins": ["logement"]}}]


def test_the_referent_and_the_acco_glo_counsellor_are_reminded_two_months_before_the_term(
        world, db_session, vault, settings):
    # Given a running AG and the circonscription's ACCO GLO counsellor
    meeting = world["meeting"]
    sheet = _icag_sheet(db_session, vault, world, 3)
    item = inscribe_sheet(db_session, vault, meeting, sheet, "15:30", part="icag",
                          icag_kind="entree")
    meeting.state = "tenue"
    counsellor = Member(circonscription_id=world["north"].id, name="Conseillère ACCO GLO",
                        email="acco.glo@ft.invalid", kind="invite", acco_glo=True)
    db_session.add(counsellor)
    support = icag.record_entry(db_session, vault, meeting, item.id, started_on=meeting.day,
                                diagnostic_on=date.today(),
                                diagnostic_structure_id=world["structures"]["ali"].id,
                                categories=["logement"])
    db_session.commit()
    reminder_day = support.term_ends_on - relativedelta(months=2)

    # When the worker's sweep runs before, on, and again after the reminder day
    assert icag.remind_terms(db_session, today=reminder_day - timedelta(days=1)) == 0
    assert icag.remind_terms(db_session, today=reminder_day) == 2
    assert icag.remind_terms(db_session, today=reminder_day + timedelta(days=3)) == 0

    # Then the referent and the counsellor each get one message, with no identity
    rows = db_session.scalars(select(Notification).where(Notification.kind == "ag_term")).all()
    assert {notifications.recipient_address(r) for r in rows} == {
        world["users"]["referent"].email, "acco.glo@ft.invalid"}
    for row in rows:
        message = email.message_from_bytes(
            mail.compose(db_session, settings, row, notifications.recipient_address(row))
            .as_bytes(), policy=email.policy.default)
        assert sheet.reference in message["Subject"]
        assert f"{support.term_ends_on:%d/%m/%Y}" in message["Subject"]
        for value in canary_values(canary_identity(43)):
            assert value not in message.as_string()

    # And a renewal re-arms the reminder for the new term
    db_session.add(meeting)
    later = create_meeting(db_session, world["north"], meeting.starts_at + timedelta(days=28),
                           "Salle 3", today=PLANNED_ON)
    renewal = inscribe_sheet(db_session, vault, later, _icag_sheet(db_session, vault, world, 3),
                             "14:00", part="icag", icag_kind="renouvellement")
    later.state = "tenue"
    icag.record_renewal(db_session, vault, later, renewal.id)
    db_session.commit()
    assert icag.remind_terms(db_session, today=reminder_day + timedelta(days=3)) == 0
    next_day = reload(db_session, GlobalSupport, support.id).term_ends_on \
        - relativedelta(months=2)
    assert icag.remind_terms(db_session, today=next_day) == 2
    assert reload(db_session, Meeting, later.id).state == "tenue"
