"""Composing e-mails: French, references, pseudonyms and links only; delivery errors sorted
into temporary and permanent."""

import dataclasses
import email
import email.policy

import pytest
from sqlalchemy import select

from generator import mail
from shared.config import SmtpTarget
from shared.domain import documents, notifications
from shared.domain.meetings import adjourn
from shared.models import MeetingMember, Member, Notification
from tests.factories import canary_values
from tests.helpers import free_port


def composed(db_session, settings, row: Notification):
    address = notifications.recipient_address(row)
    message = mail.compose(db_session, settings, row, address)
    return email.message_from_bytes(message.as_bytes(), policy=email.policy.default)


def test_every_kind_reads_in_french_with_links_and_no_identity(world, db_session, vault,
                                                                settings):
    # Given the world's sheets authored by the referent, inscribed, one adjourned
    referent = world["users"]["referent"]
    meeting = world["meeting"]
    for sheet in world["sheets"]:
        sheet.author_id = referent.id
    first, second = meeting.items[1], meeting.items[2]
    notifications.sheet_moved(db_session, first.sheet, "inscribe", meeting)
    adjourn(db_session, vault, meeting, second.id, "Dossier incomplet.")
    notifications.minutes_sent(db_session, meeting)
    member = Member(circonscription_id=world["north"].id, name="Membre", email="m@p.invalid")
    db_session.add(member)
    db_session.flush()
    row = MeetingMember(meeting=meeting, member_id=member.id)
    db_session.add(row)
    db_session.flush()
    notifications.convoke(db_session, meeting,
                          documents.request_document(db_session, meeting, "agenda", None))
    db_session.flush()
    messages = {r.kind: composed(db_session, settings, r)
                for r in db_session.scalars(select(Notification))}
    assert set(messages) >= {"sheet_submitted", "sheet_inscribed", "sheet_adjourned",
                             "visa_pending", "convocation"}
    inscribed = messages["sheet_inscribed"]
    assert inscribed["Subject"] == (f"[ICL-I] Fiche {first.sheet.reference} inscrite à la "
                                    "séance du 15/12/2026")
    assert "créneau de 14\u00a0h\u00a030" in inscribed.get_content()
    assert "Dossier incomplet" not in messages["sheet_adjourned"].as_string()
    assert "/visas/" in messages["visa_pending"].get_content()
    convocation = messages["convocation"].get_content()
    assert "mardi 15 décembre 2026 à 14\u00a0h\u00a000" in convocation
    assert f"{settings.base_url}/convocation/{meeting.id}/" in convocation
    # A member has no account: answered through the link, never sent to log in
    assert "connexion" not in convocation and "/compte" not in convocation
    assert "après connexion" in messages["sheet_inscribed"].get_content()
    for message in messages.values():
        assert message["Message-ID"] and message["Auto-Submitted"] == "auto-generated"
        for identity in world["identities"]:
            for value in canary_values(identity):
                assert value not in message.as_string()


@pytest.mark.parametrize(("reply", "temporary"), [("451 Try later", True),
                                                  ("550 No such user", False)])
def test_smtp_replies_are_sorted_into_temporary_and_permanent(settings, reply, temporary):
    from aiosmtpd.controller import Controller

    class Refuse:
        async def handle_DATA(self, server, session, envelope):
            return reply

    controller = Controller(Refuse(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        target = dataclasses.replace(settings, smtp=SmtpTarget("127.0.0.1", controller.port,
                                                               "plain"))
        message = email.message.EmailMessage()
        message["Subject"], message["From"], message["To"] = "x", "a@b.invalid", "c@d.invalid"
        with pytest.raises(mail.MailError) as refused:
            mail.deliver(target, message, "c@d.invalid", "key")
    finally:
        controller.stop()
    assert refused.value.temporary is temporary and refused.value.code == reply[:3]
    assert "c@d.invalid" not in str(refused.value)


def test_an_unreachable_server_is_a_temporary_failure(settings):
    target = dataclasses.replace(settings, smtp=SmtpTarget("127.0.0.1", free_port(), "plain"))
    message = email.message.EmailMessage()
    message["Subject"] = "x"
    with pytest.raises(mail.MailError) as refused:
        mail.deliver(target, message, "c@d.invalid", "key")
    assert refused.value.temporary
