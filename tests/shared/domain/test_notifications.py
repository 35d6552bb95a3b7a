"""Who is told what, when: preferences and digests, directors' visas and their reminders."""

from datetime import datetime, timedelta

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from shared.db import utcnow
from shared.domain import documents, notifications
from shared.errors import InvalidInputError
from shared.models import (
    GeneratedDocument,
    MeetingMember,
    Member,
    MinutesVisa,
    Notification,
)


def rows(db_session, **where):
    query = select(Notification).order_by(Notification.id)
    for name, value in where.items():
        query = query.where(getattr(Notification, name) == value)
    return db_session.scalars(query).all()


def test_a_user_chooses_per_topic_between_immediate_mail_and_a_daily_digest(world, db_session,
                                                                          vault):
    facilitator = world["users"]["facilitator"]
    assert notifications.preferences(db_session, facilitator) == {
        "sheets_to_screen": "immediate", "minutes": "immediate"}
    with pytest.raises(InvalidInputError):  # a referent's topic is not the facilitator's
        notifications.set_preferences(db_session, vault, facilitator, {"my_sheets": "digest"})
    notifications.set_preferences(db_session, vault, facilitator, {"sheets_to_screen": "digest"})
    notifications.sheet_moved(db_session, world["sheets"][0], "submit")
    (held,) = rows(db_session, status="held")
    assert held.user_id == facilitator.id

    # Before the digest hour (7:00 in Paris) nothing is released
    assert notifications.release_digests(db_session, 7, now=datetime(2026, 11, 26, 5, 0)) == 0
    # From 7:00 Paris (6:00 UTC in winter) one digest gathers what was held, once a day
    assert notifications.release_digests(db_session, 7, now=datetime(2026, 11, 26, 6, 5)) == 1
    (digest,) = rows(db_session, kind="digest")
    assert digest.status == "queued" and digest.user_id == facilitator.id
    assert notifications.digest_items(db_session, digest) == [held]
    assert held.status == "digested"
    notifications.sheet_moved(db_session, world["sheets"][1], "submit")
    assert notifications.release_digests(db_session, 7, now=datetime(2026, 11, 26, 20)) == 0
    assert notifications.release_digests(db_session, 7, now=datetime(2026, 11, 27, 7)) == 1


def test_directors_are_told_of_minutes_awaiting_their_visa_and_reminded(world, db_session):
    meeting = world["meeting"]
    meeting.state = "pv_en_signature"
    minutes = GeneratedDocument(meeting_id=meeting.id, kind="minutes", content_version=1,
                                filename="pv.docx", media_type="x", size=1, body=b"")
    db_session.add(minutes)
    db_session.flush()
    notifications.minutes_sent(db_session, meeting)
    told = {r.user_id for r in rows(db_session, kind="visa_pending")}
    assert told == {world["users"]["director"].id, world["users"]["other_director"].id}

    delay = timedelta(days=3)
    now = utcnow()
    assert notifications.remind_directors(db_session, delay, now=now) == 0
    later = now + delay + timedelta(minutes=1)
    assert notifications.remind_directors(db_session, delay, now=later) == 2
    assert notifications.remind_directors(db_session, delay, now=later) == 0  # once per delay
    # The Département signed: only France Travail's director is reminded afterwards
    db_session.add(MinutesVisa(meeting_id=meeting.id, document_id=minutes.id,
                               institution="departement", user_id=world["users"]["director"].id,
                               sha256="0" * 64))
    db_session.flush()
    even_later = later + delay + timedelta(minutes=1)
    assert notifications.remind_directors(db_session, delay, now=even_later) == 1
    last = rows(db_session, kind="visa_reminder")[-1]
    assert last.user_id == world["users"]["other_director"].id


def test_a_deactivated_or_unknown_recipient_gets_nothing(world, db_session, vault):
    from tests.factories import canary_identity, make_sheet

    referent = world["users"]["referent"]
    referent.active = False
    sheet = make_sheet(db_session, vault, world["structures"]["ssd"], canary_identity(3),
                       author_id=referent.id, status="a_completer")
    assert not rows(db_session, kind="sheet_returned", sheet_id=sheet.id)


def test_an_answer_link_names_one_member_of_one_session_and_works_once(world, db_session):
    meeting = world["meeting"]
    rows_ = []
    for n in (1, 2):
        member = Member(circonscription_id=world["north"].id, name=f"M{n}", email=f"{n}@x.invalid")
        db_session.add(member)
        db_session.flush()
        rows_.append(MeetingMember(meeting=meeting, member_id=member.id))
        db_session.add(rows_[-1])
    db_session.flush()
    notifications.convoke(db_session, meeting,
                          documents.request_document(db_session, meeting, "agenda", None))
    first, second = rows_
    secret = "s" * 40
    token = notifications.answer_token(secret, first)
    assert notifications.invitation_for(db_session, secret, meeting.id, token) is first
    with pytest.raises(InvalidInputError):  # another session
        notifications.invitation_for(db_session, secret, meeting.id + 1, token)
    # Another member's id under this member's nonce (even with the secret) opens nothing
    forged = URLSafeSerializer(secret, salt=notifications.ANSWER_SALT).dumps(
        {"m": meeting.id, "i": second.id, "n": first.answer_nonce, "e": 2**40})
    with pytest.raises(InvalidInputError):
        notifications.invitation_for(db_session, secret, meeting.id, forged)
    # Expired: the session has started
    with pytest.raises(InvalidInputError):
        notifications.invitation_for(db_session, secret, meeting.id, token,
                                     now=meeting.starts_at + timedelta(days=1))
    notifications.use_answer_link(db_session, first)
    with pytest.raises(InvalidInputError):  # used once
        notifications.invitation_for(db_session, secret, meeting.id, token)
    other = notifications.answer_token(secret, second)
    assert notifications.invitation_for(db_session, secret, meeting.id, other) is second


def test_two_answers_sent_at_once_through_one_link_keep_one(world, db_session, engine):
    from sqlalchemy.orm import Session

    meeting = world["meeting"]
    member = Member(circonscription_id=world["north"].id, name="M", email="m@x.invalid")
    db_session.add(member)
    db_session.flush()
    db_session.add(MeetingMember(meeting=meeting, member_id=member.id))
    db_session.flush()
    notifications.convoke(db_session, meeting,
                          documents.request_document(db_session, meeting, "agenda", None))
    db_session.commit()
    token = notifications.answer_token("s" * 40, meeting.members[-1])
    # Two requests both open the link before either has answered
    with Session(engine) as one, Session(engine) as two:
        first = notifications.invitation_for(one, "s" * 40, meeting.id, token)
        second = notifications.invitation_for(two, "s" * 40, meeting.id, token)
        notifications.use_answer_link(one, first)
        one.commit()
        # The second, validated against the same nonce, is refused when it spends the link
        with pytest.raises(InvalidInputError):
            notifications.use_answer_link(two, second)
        two.rollback()
