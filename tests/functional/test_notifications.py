"""E-mail end to end: events write outbox rows, a real worker hands them to a real SMTP server
(aiosmtpd, in-process), retries temporary refusals and reports permanent ones."""

from __future__ import annotations

import email
import email.policy
import io
import re
import time
from datetime import datetime

import docx
import pytest
from sqlalchemy import select

from shared import outbox
from shared.domain import notifications
from shared.domain.meetings import invite_members, save_member
from shared.models import MeetingMember, Notification
from tests.factories import canary_identity, canary_values, make_sheet
from tests.helpers import csrf_token, free_port, logged_in, start_worker, stop_worker, wait_for


class SmtpRecorder:
    """An aiosmtpd handler that keeps what it accepts, and refuses on demand."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.data_replies: list[str] = []  # replies to the next DATA commands, then 250
        self.refused: set[str] = set()  # recipients refused for good

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_replies:
            return self.data_replies.pop(0)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message.envelope_to = list(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m.envelope_to]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    recorder.url = f"smtp://127.0.0.1:{controller.port}"
    yield recorder
    controller.stop()


@pytest.fixture
def mail_worker(test_env, engine, redis, tmp_path, smtp_server):
    process = start_worker({**test_env, "ICLI_SMTP_URL": smtp_server.url}, redis,
                           tmp_path / "worker.log")
    yield process
    stop_worker(process)


def body_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def assert_no_identity(messages, identities) -> None:
    raw = "".join(m.as_string() for m in messages)
    for identity in identities:
        for value in canary_values(identity):
            assert value not in raw


def statuses(db_session) -> dict[int, str]:
    db_session.expire_all()
    return dict(db_session.execute(select(Notification.id, Notification.status)).all())


def test_facilitator_and_referent_are_told_by_mail_without_any_identity(
        app, world, db_session, vault, smtp_server, mail_worker):
    # Given a referent's sheet submitted to the north circonscription
    referent = world["users"]["referent"]
    identity = canary_identity(5)
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], identity,
                       author_id=referent.id, status="soumise")
    db_session.commit()
    # When the facilitator returns it for completion through the screening form
    client = logged_in(app, "facilitator@test.invalid")
    token = csrf_token(client, f"/fiches/{sheet.id}")
    response = client.post(f"/fiches/{sheet.id}/examen", data={
        "csrf_token": token, "decision": "return", "reason": "Il manque le parcours."})
    assert response.status_code == 302
    # Then the facilitator got one mail per submitted sheet, the referent one "à compléter"
    wait_for(lambda: len(smtp_server.to("facilitator@test.invalid")) == 3
             and smtp_server.to("referent@test.invalid"), timeout=60)
    submitted = [m for m in smtp_server.to("facilitator@test.invalid")
                 if sheet.reference in m["Subject"]]
    assert len(submitted) == 1
    assert "soumise à l'instance" in submitted[0]["Subject"]
    assert f"http://127.0.0.1:8000/fiches/{sheet.id}" in body_of(submitted[0])
    assert sheet.beneficiary.pseudonym in body_of(submitted[0])
    (returned,) = smtp_server.to("referent@test.invalid")
    assert returned["Subject"] == f"[ICL-I] Fiche {sheet.reference} à compléter"
    assert "Il manque le parcours" not in returned.as_string()  # the reason stays in the app
    assert not smtp_server.to("other.facilitator@test.invalid")
    assert_no_identity(smtp_server.messages, [identity, *world["identities"]])
    wait_for(lambda: set(statuses(db_session).values()) == {"sent"})
    assert "test.invalid" not in mail_worker.log_path.read_text()  # no address in the logs


def returned_sheet_mail(db_session, vault, world) -> Notification:
    """A "fiche à compléter" e-mail to the referent, handed to the queue."""
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(6),
                       author_id=world["users"]["referent"].id, status="a_completer")
    db_session.commit()
    return db_session.scalars(select(Notification).where(
        Notification.kind == "sheet_returned", Notification.sheet_id == sheet.id)).one()


def wait_until(db_session, row: Notification, status: str) -> Notification:
    def reached():
        db_session.expire_all()
        return db_session.get(Notification, row.id).status == status

    wait_for(reached, timeout=60)
    return db_session.get(Notification, row.id)


def test_a_temporary_refusal_is_retried_and_delivered_once(
        world, db_session, vault, redis, keyring, smtp_server, mail_worker):
    # Given the server answers "try again later" twice
    wait_for(lambda: len(smtp_server.messages) == 2)  # the world's two mails went out first
    smtp_server.data_replies = ["451 4.3.0 Try again later", "421 4.3.2 Busy"]
    # When a mail is written and handed to the queue
    row = returned_sheet_mail(db_session, vault, world)
    outbox.send_pending(db_session, redis, keyring)
    # Then every mail is delivered exactly once, the two refusals costing two more attempts
    row = wait_until(db_session, row, "sent")
    wait_for(lambda: set(statuses(db_session).values()) == {"sent"})
    time.sleep(3)  # nothing more arrives later
    rows = db_session.scalars(select(Notification)).all()
    ids = [m["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == len(set(ids)) == len(rows)
    assert sum(r.attempts for r in rows) == len(rows) + 2
    assert any(row.uuid in i for i in ids)


def test_a_permanent_refusal_is_shown_to_administrators(
        app, world, db_session, vault, redis, keyring, smtp_server, mail_worker):
    smtp_server.refused.add("referent@test.invalid")
    row = returned_sheet_mail(db_session, vault, world)
    outbox.send_pending(db_session, redis, keyring)
    row = wait_until(db_session, row, "failed")
    assert row.attempts == 1 and row.error_code == "550"
    page = logged_in(app, "admin@test.invalid").get("/admin/courriels").get_data(as_text=True)
    assert "code 550" in page and "Test referent" in page
    assert logged_in(app, "facilitator@test.invalid").get("/admin/courriels").status_code == 403
    assert not smtp_server.to("referent@test.invalid")


def test_convocations_carry_the_agenda_and_a_single_use_answer_link(
        app, world, db_session, vault, smtp_server, mail_worker):
    # Given two members with an address
    meeting = world["meeting"]
    for n in (1, 2):
        save_member(db_session, None, circonscription_id=world["north"].id, structure_id=None,
                    name=f"Membre {n}", function="Conseil", kind="permanent", acco_glo=False,
                    active=True, email=f"membre{n}@partenaire.invalid")
    db_session.commit()
    # When the facilitator convenes the session
    client = logged_in(app, "facilitator@test.invalid")
    token = csrf_token(client, f"/seances/{meeting.id}")
    assert client.post(f"/seances/{meeting.id}/etat/convene",
                       data={"csrf_token": token}).status_code == 302
    # Then each member receives a convocation with the agenda attached
    wait_for(lambda: len([m for m in smtp_server.messages
                          if "Convocation" in m["Subject"]]) == 2, timeout=90)
    convocation = smtp_server.to("membre1@partenaire.invalid")[0]
    (attachment,) = list(convocation.iter_attachments())
    assert attachment.get_filename().startswith("ordre-du-jour-2026-12-15")
    agenda = "\n".join(p.text for p in docx.Document(io.BytesIO(
        attachment.get_content())).paragraphs)
    assert "Ordre du jour" in agenda and "Saint-Denis" in agenda
    assert_no_identity(smtp_server.messages, world["identities"])
    link = re.search(r"http://127\.0\.0\.1:8000(/convocation/\S+)", body_of(convocation))[1]
    other_link = re.search(r"http://127\.0\.0\.1:8000(/convocation/\S+)", body_of(
        smtp_server.to("membre2@partenaire.invalid")[0]))[1]

    # The link shows the date and place, and nothing of the agenda, without a password
    anonymous = app.test_client()
    page = anonymous.get(link)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "15/12/2026" in text
    for secret in [*(s.reference for s in world["sheets"]),
                   *(s.beneficiary.pseudonym for s in world["sheets"]), "Membre 2"]:
        assert secret not in text
    # It cannot serve another session
    wrong_session = re.sub(r"/convocation/\d+/", f"/convocation/{meeting.id + 1}/", link)
    assert anonymous.get(wrong_session).status_code == 404
    # It answers once
    form_token = csrf_token(anonymous, link)
    answered = anonymous.post(link, data={"csrf_token": form_token, "answer": "remplace",
                                          "replacement": "Sam Suppléant"})
    assert answered.status_code == 200 and "enregistrée" in answered.get_data(as_text=True)
    assert anonymous.get(link).status_code == 404
    assert anonymous.post(link, data={"csrf_token": form_token,
                                      "answer": "decline"}).status_code == 404
    db_session.expire_all()
    rows = {r.member.email: r for r in db_session.scalars(
        select(MeetingMember).where(MeetingMember.meeting_id == meeting.id))}
    assert rows["membre1@partenaire.invalid"].answer == "remplace"
    assert rows["membre1@partenaire.invalid"].replacement == "Sam Suppléant"
    assert rows["membre2@partenaire.invalid"].answer == "non_renseigne"
    # The other member's link still works: each link is its member's own
    assert anonymous.get(other_link).status_code == 200


def test_an_answer_link_expires_and_names_one_member(app, world, db_session):
    meeting = world["meeting"]
    save_member(db_session, None, circonscription_id=world["north"].id, structure_id=None,
                name="Membre", function="", kind="permanent", acco_glo=False, active=True,
                email="membre@partenaire.invalid")
    invite_members(db_session, meeting)
    row = meeting.members[-1]
    row.answer_nonce = "a" * 32
    db_session.commit()
    secret = app.extensions["icli"].settings.link_key
    old = notifications.answer_token(secret, row, now=datetime(2026, 1, 1))
    fresh = notifications.answer_token(secret, row)
    client = app.test_client()
    # An expired link (21 days after it was sent) is refused, a fresh one works
    assert client.get(f"/convocation/{meeting.id}/{old}").status_code == 404
    assert client.get(f"/convocation/{meeting.id}/{fresh}").status_code == 200
    # A token signed with another secret, or forged for another member, is refused
    forged = notifications.answer_token("another-secret-" + "y" * 32, row)
    assert client.get(f"/convocation/{meeting.id}/{forged}").status_code == 404
    assert client.get(f"/convocation/{meeting.id}/{fresh[:-2]}xx").status_code == 404


def test_the_information_note_is_built_by_reference_and_submission_needs_the_information(
        app, world, db_session, vault, worker_process):
    # Given a referent's draft
    referent = world["users"]["referent"]
    identity = canary_identity(7)
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], identity,
                       author_id=referent.id)
    db_session.commit()
    client = logged_in(app, "referent@test.invalid")
    # When they ask for the information note
    token = csrf_token(client, f"/fiches/{sheet.id}")
    assert client.post(f"/fiches/{sheet.id}/note-information",
                       data={"csrf_token": token}).status_code == 302

    # Then the worker builds it, by reference, and the sheet page offers it
    def offered():
        page = client.get(f"/fiches/{sheet.id}").get_data(as_text=True)
        return re.search(rf"/fiches/{sheet.id}/documents/(\d+)\"", page)

    document_id = wait_for(offered, timeout=90)[1]
    download = client.get(f"/fiches/{sheet.id}/documents/{document_id}")
    assert download.status_code == 200
    note = docx.Document(io.BytesIO(download.data))
    text = "\n".join([p.text for p in note.paragraphs]
                     + [c.text for t in note.tables for r in t.rows for c in r.cells])
    assert sheet.reference in text and "délégué" in text and "CNIL" in text
    assert "Service social départemental de Saint-Denis" in text
    for value in canary_values(identity):
        assert value not in text
    # Another referent's structure cannot have it
    other = logged_in(app, "other.referent@test.invalid")
    assert other.get(f"/fiches/{sheet.id}/documents/{document_id}").status_code == 404
    # Nor the facilitator or a director, through the session or visa downloads
    for email_address, url in (("facilitator@test.invalid", f"/seances/documents/{document_id}"),
                               ("director@test.invalid", f"/visas/documents/{document_id}")):
        assert logged_in(app, email_address).get(url).status_code == 404

    # And submission is refused, in French, while the person is not said to be informed
    from shared.demo import demo_values
    from shared.domain.reference import reference_labels
    from shared.domain.sheet_workflow import submit
    from shared.domain.sheets import SheetInvalidError, write_values

    write_values(vault, sheet, {**demo_values(0), "personne_informee": "",
                                "date_information": "", "position_personne": ""})
    with pytest.raises(SheetInvalidError) as refused:
        submit(db_session, vault, sheet, reference_labels(db_session), actor_id=referent.id)
    assert set(refused.value.errors) >= {"personne_informee", "position_personne"}
    write_values(vault, sheet, {**demo_values(0), "personne_informee": "oui",
                                "date_information": "", "position_personne": "injoignable"})
    with pytest.raises(SheetInvalidError) as refused:
        submit(db_session, vault, sheet, reference_labels(db_session), actor_id=referent.id)
    assert "date" in refused.value.errors["date_information"]


def test_without_smtp_mail_is_written_to_the_instance_outbox_and_listed_for_admins(
        app, world, db_session, vault, redis, keyring, settings, worker_process):
    # Given a facilitator who chose the daily digest, and minutes sent to the directors
    facilitator = world["users"]["facilitator"]
    notifications.set_preferences(db_session, vault, facilitator, {"sheets_to_screen": "digest"})
    notifications.sheet_moved(db_session, world["sheets"][0], "submit")
    meeting = world["meeting"]
    meeting.state = "pv_en_signature"
    notifications.minutes_sent(db_session, meeting)
    notifications.release_digests(db_session, 7, now=datetime(2026, 11, 26, 8, 0))
    db_session.commit()
    outbox.send_pending(db_session, redis, keyring)
    # Then every message becomes a private .eml file named by its idempotency key
    digest = db_session.scalars(select(Notification).where(Notification.kind == "digest")).one()
    visa = db_session.scalars(select(Notification).where(
        Notification.kind == "visa_pending")).first()
    for row in (digest, visa):
        wait_until(db_session, row, "sent")
    folder = settings.mail_outbox_dir
    written = email.message_from_bytes((folder / f"{digest.uuid}.eml").read_bytes(),
                                       policy=email.policy.default)
    assert written["To"] == facilitator.email
    assert "Récapitulatif quotidien : 1 notification" in written["Subject"]
    assert world["sheets"][0].reference in body_of(written)
    assert (folder / f"{digest.uuid}.eml").stat().st_mode & 0o777 == 0o600
    visa_mail = (folder / f"{visa.uuid}.eml").read_text()
    assert "en attente de votre visa" in visa_mail and "/visas/" in visa_mail
    assert_no_identity([written], world["identities"])
    page = logged_in(app, "admin@test.invalid").get("/admin/courriels").get_data(as_text=True)
    assert f"{digest.uuid}.eml" in page


def test_a_replayed_mail_payload_is_refused_and_audited(world, db_session, vault, redis,
                                                        keyring, settings):
    from rq import Queue
    from rq.serializers import JSONSerializer

    from shared.models import AuditEvent
    from shared.queue import MAIL_JOB_FUNCTION, MAIL_QUEUE, sign_payload
    from tests.helpers import run_queue

    row = returned_sheet_mail(db_session, vault, world)
    payload = sign_payload(keyring, row.uuid, None, queue=MAIL_QUEUE)
    queue = Queue(MAIL_QUEUE, connection=redis, serializer=JSONSerializer)
    queue.enqueue(MAIL_JOB_FUNCTION, payload)
    queue.enqueue(MAIL_JOB_FUNCTION, payload)  # replayed: the message went out already
    run_queue(settings, redis, MAIL_QUEUE)
    db_session.expire_all()
    assert db_session.get(Notification, row.id).status == "sent"
    refused = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "job_refused")).all()
    assert [(r.actor_label, r.purpose) for r in refused] == [("worker", "replayed payload")]
