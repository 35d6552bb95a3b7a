"""E-mail notifications: written in the transaction of their event, delivered by the worker.

Like document jobs, a notification is an outbox row first; Redis only wakes the worker up.
Delivery is at least once: a worker that dies after the SMTP server accepted a message but
before the row is marked sent leaves it ``sending`` past its lease, and it is sent again
(same Message-ID). That window is the only duplicate.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from shared.db import PARIS, utcnow
from shared.domain import audit
from shared.domain.documents import latest_document
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError
from shared.models import (
    DocumentJob,
    GlobalSupport,
    Meeting,
    MeetingMember,
    Member,
    MinutesCorrection,
    MinutesVisa,
    Notification,
    NotificationPreference,
    RoleAssignment,
    Sheet,
    User,
)
from shared.models.notification import KINDS, MODES, TOPIC_ROLES, TOPICS

LEASE = timedelta(seconds=30)  # extended while sending: once past, the worker is dead
RESEND_AFTER = timedelta(minutes=10)  # a queued row sent to Redis this long ago was lost
SCHEDULER_SLACK = timedelta(seconds=2)
MAX_ATTEMPTS = 8  # temporary failures before the message is reported as failed
ANSWER_LINK_TTL = timedelta(days=21)
ANSWER_SALT = "icli.convocation-answer.v1"
# Session states in which a member may still answer a convocation (link or page).
ANSWER_STATES = {"planifiee", "odj_en_construction", "convoquee"}
# Which sheet transitions tell whom: the circonscription's facilitators or the author.
SHEET_EVENTS = {"submit": "sheet_submitted", "return": "sheet_returned",
                "inscribe": "sheet_inscribed", "adjourn": "sheet_adjourned",
                "bring_back": "sheet_brought_back", "resubmit": "sheet_updated"}
# Kinds for the circonscription's facilitators; the others go to the sheet's author.
FACILITATOR_KINDS = {"sheet_submitted", "sheet_updated"}


# -- preferences ----------------------------------------------------------------------------
def topics_for(user: User) -> dict[str, str]:
    """The topics this user can receive, with their French labels."""
    return {topic: label for topic, label in TOPICS.items()
            if user.has_role(TOPIC_ROLES[topic])}


def preferences(session: Session, user: User) -> dict[str, str]:
    """topic -> mode for every topic of the user (immediate when never chosen)."""
    chosen = dict(session.execute(select(NotificationPreference.topic,
                                         NotificationPreference.mode)
                                  .where(NotificationPreference.user_id == user.id)).all())
    return {topic: chosen.get(topic, "immediate") for topic in topics_for(user)}


def set_preferences(session: Session, vault: Vault, user: User, modes: dict[str, str]) -> None:
    """Save the user's choice per topic; unknown topics or modes are refused. Audited."""
    allowed = topics_for(user)
    if set(modes) - set(allowed) or set(modes.values()) - set(MODES):
        raise InvalidInputError("Choix de notification invalide.")
    for topic, mode in modes.items():
        row = session.get(NotificationPreference, (user.id, topic))
        if row is None:
            session.add(NotificationPreference(user_id=user.id, topic=topic, mode=mode))
        else:
            row.mode = mode
    session.flush()
    audit.record(session, vault.keyring, vault.actor, "notification_preferences",
                 object_type="users", object_ids=[user.id])


# -- events ---------------------------------------------------------------------------------
def _to_user(session: Session, kind: str, user: User | None, **ids) -> Notification | None:
    """Write one notification, unless the user cannot receive it or an event with the same
    key was told already (a rebuilt fiche retour, a second sweep). Two processes racing on
    one key: the unique constraint refuses the second commit (the caller rolls back)."""
    if user is None or not user.active or not user.email:
        return None
    if ids.get("dedup_key") and _keyed(session, ids["dedup_key"]):
        return None
    mode = session.scalar(select(NotificationPreference.mode).where(
        NotificationPreference.user_id == user.id,
        NotificationPreference.topic == KINDS[kind]))
    notification = Notification(kind=kind, user_id=user.id,
                                status="held" if mode == "digest" else "queued", **ids)
    session.add(notification)
    return notification


def _users_with_role(session: Session, role: str, circonscription_id: int | None = None
                     ) -> list[User]:
    query = (select(User).join(RoleAssignment, RoleAssignment.user_id == User.id)
             .where(RoleAssignment.role == role, User.active.is_(True)))
    if circonscription_id is not None:
        query = query.where(RoleAssignment.circonscription_id == circonscription_id)
    return list(session.scalars(query.distinct().order_by(User.id)))


def sheet_moved(session: Session, sheet: Sheet, action: str,
                meeting: Meeting | None = None) -> None:
    """A submitted (or updated returning) sheet tells the circonscription's facilitators; a
    returned, inscribed, adjourned or brought back one tells its author."""
    kind = SHEET_EVENTS.get(action)
    if kind is None:
        return
    ids = {"sheet_id": sheet.id, "meeting_id": meeting.id if meeting is not None else None}
    if kind in FACILITATOR_KINDS:
        for user in _users_with_role(session, "facilitator", sheet.circonscription_id):
            _to_user(session, kind, user, **ids)
    elif sheet.author_id is not None:
        _to_user(session, kind, session.get(User, sheet.author_id), **ids)
    session.flush()


def sheet_reassigned(session: Session, sheet: Sheet, colleague: User) -> None:
    """A departing referent's sheet is now ``colleague``'s to follow."""
    _to_user(session, "sheet_reassigned", colleague, sheet_id=sheet.id)


def feedback_ready(session: Session, job: DocumentJob) -> None:
    """The fiche retour of a situation is built: its author can download it."""
    sheet = session.get(Sheet, job.sheet_id) if job.sheet_id else None
    if sheet is not None and sheet.author_id is not None:
        _to_user(session, "feedback_ready", session.get(User, sheet.author_id),
                 sheet_id=sheet.id, meeting_id=job.meeting_id,
                 dedup_key=f"feedback:{job.meeting_id}:{sheet.id}")
        session.flush()


def convoke(session: Session, meeting: Meeting, agenda_job: DocumentJob) -> int:
    """A convocation to every invited member with an address, the agenda attached once built;
    each carries a single-use answer link. Returns how many were written."""
    count = 0
    for row in meeting.members:
        if not row.member.email:
            continue
        key = f"convocation:{row.id}:{meeting.content_version}"
        if _keyed(session, key):
            continue
        row.answer_nonce = secrets.token_hex(16)
        session.add(Notification(kind="convocation", meeting_member_id=row.id,
                                 meeting_id=meeting.id, document_job_id=agenda_job.id,
                                 dedup_key=key))
        count += 1
    session.flush()
    return count


def _directors_awaited(session: Session, meeting: Meeting) -> list[User]:
    """Directors of the institutions that have not yet signed the latest minutes."""
    document = latest_document(session, meeting.id, "minutes")
    signed = set() if document is None else set(session.scalars(
        select(MinutesVisa.institution).where(MinutesVisa.document_id == document.id)))
    return [user for user in _users_with_role(session, "director")
            if user.institutions - signed]


def minutes_sent(session: Session, meeting: Meeting) -> None:
    """The minutes await the directors' visas: each of them is told."""
    for user in _directors_awaited(session, meeting):
        _to_user(session, "visa_pending", user, meeting_id=meeting.id,
                 dedup_key=f"visa:{meeting.id}:{user.id}:{meeting.content_version}")
    session.flush()


def minutes_correction(session: Session, meeting: Meeting,
                       correction: MinutesCorrection) -> None:
    """A director asked for a correction of the minutes: the circonscription's CAT are told
    (the message points to the session's page, where the comment is)."""
    for user in _users_with_role(session, "facilitator", meeting.circonscription_id):
        _to_user(session, "minutes_correction", user, meeting_id=meeting.id,
                 dedup_key=f"minutes-correction:{correction.id}:{user.id}")
    session.flush()


def remind_directors(session: Session, delay: timedelta, now: datetime | None = None) -> int:
    """A reminder to each director still awaited ``delay`` after the last message about the
    same minutes. Returns how many reminders were written."""
    now = now or utcnow()
    written = 0
    for meeting in session.scalars(select(Meeting).where(Meeting.state == "pv_en_signature")):
        for user in _directors_awaited(session, meeting):
            told = session.execute(
                select(func.count(), func.max(Notification.created_at)).where(
                    Notification.meeting_id == meeting.id, Notification.user_id == user.id,
                    Notification.kind.in_(("visa_pending", "visa_reminder")))).one()
            if told[1] is not None and told[1] > now - delay:
                continue
            key = f"visa-reminder:{meeting.id}:{user.id}:{told[0]}"
            if _to_user(session, "visa_reminder", user, meeting_id=meeting.id,
                        dedup_key=key, created_at=now):
                written += 1
    return written


def global_support_term(session: Session, support: GlobalSupport) -> int:
    """The accompagnement global's term is near: its referent (the author of the sheet that
    brought the entry) and the circonscription's ACCO GLO counsellors, once per term.
    Returns how many messages were written."""
    key = f"ag-term:{support.id}:{support.term_ends_on.isoformat()}"
    written = 0
    author = session.get(User, support.sheet.author_id) if support.sheet.author_id else None
    if _to_user(session, "ag_term", author, sheet_id=support.sheet_id,
                global_support_id=support.id, dedup_key=f"{key}:u{author.id if author else 0}"):
        written += 1
    for member in session.scalars(select(Member).where(
            Member.circonscription_id == support.circonscription_id, Member.acco_glo.is_(True),
            Member.active.is_(True), Member.email != "").order_by(Member.id)):
        member_key = f"{key}:m{member.id}"
        if not _keyed(session, member_key):
            session.add(Notification(kind="ag_term", member_id=member.id,
                                     sheet_id=support.sheet_id, global_support_id=support.id,
                                     dedup_key=member_key))
            written += 1
    session.flush()
    return written


def _keyed(session: Session, key: str) -> bool:
    return session.scalar(select(Notification.id).where(Notification.dedup_key == key)) \
        is not None


def release_digests(session: Session, digest_hour: int, now: datetime | None = None) -> int:
    """Once a day from ``digest_hour`` (Paris time), one digest per user gathers what was held
    for them. Returns how many digests were written."""
    now = now or utcnow()
    local = now.replace(tzinfo=UTC).astimezone(PARIS)
    if local.hour < digest_hour:
        return 0
    written = 0
    user_ids = session.scalars(select(Notification.user_id).where(
        Notification.status == "held").distinct())
    for user_id in list(user_ids):
        key = f"digest:{user_id}:{local.date().isoformat()}"
        if _keyed(session, key):  # today's digest is written: the rest waits for tomorrow
            continue
        digest = Notification(kind="digest", user_id=user_id, dedup_key=key)
        session.add(digest)
        session.flush()
        session.execute(update(Notification).where(
            Notification.user_id == user_id, Notification.status == "held")
            .values(status="digested", digest_id=digest.id))
        written += 1
    session.flush()
    return written


def digest_items(session: Session, digest: Notification) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.digest_id == digest.id)
                                .order_by(Notification.id)))


# -- the outbox -----------------------------------------------------------------------------
def to_send(session: Session, now: datetime | None = None) -> list[Notification]:
    """Rows that need (re)sending to Redis: never sent, due for a retry, lost, or abandoned."""
    now = now or utcnow()
    due = Notification.next_attempt_at.is_(None) | (Notification.next_attempt_at <= now)
    return list(session.scalars(select(Notification).where(or_(
        (Notification.status == "queued") & due & (
            Notification.enqueued_at.is_(None) | (Notification.enqueued_at < now - RESEND_AFTER)
            | (Notification.enqueued_at < Notification.next_attempt_at)),
        (Notification.status == "sending") & (Notification.lease_until < now),
    )).order_by(Notification.id)))


def forget_enqueued(session: Session) -> int:
    """Redis lost its queues (scheduled retries included): every queued e-mail counts as never
    sent, and goes when it is due (``to_send``)."""
    return session.execute(update(Notification).where(Notification.status == "queued",
                                                      Notification.enqueued_at.is_not(None))
                           .values(enqueued_at=None)).rowcount


def mark_enqueued(session: Session, notification: Notification) -> None:
    notification.enqueued_at = utcnow()
    session.flush()


def claim(session: Session, uuid: str, now: datetime | None = None,
          lease: timedelta = LEASE) -> Notification | None:
    """Compare-and-swap queued and due (or abandoned) → sending; None when not claimable."""
    now = now or utcnow()
    # RQ's scheduler counts in whole seconds: a retry may wake up a moment early.
    due = Notification.next_attempt_at.is_(None) | (
        Notification.next_attempt_at <= now + SCHEDULER_SLACK)
    result = session.execute(
        update(Notification).where(Notification.uuid == uuid).where(or_(
            (Notification.status == "queued") & due,
            (Notification.status == "sending") & (Notification.lease_until < now)))
        .values(status="sending", lease_until=now + lease,
                attempts=Notification.attempts + 1))
    if result.rowcount != 1:
        return None
    return session.scalars(select(Notification).where(Notification.uuid == uuid)
                           .execution_options(populate_existing=True)).one()


def extend_lease(session: Session, notification_id: int, attempt: int,
                 lease: timedelta) -> bool:
    """Push back the lease of this very attempt; False once it ended or was taken over."""
    result = session.execute(
        update(Notification).where(Notification.id == notification_id,
                                   Notification.status == "sending",
                                   Notification.attempts == attempt)
        .values(lease_until=utcnow() + lease))
    return result.rowcount == 1


def mark_sent(session: Session, notification: Notification) -> bool:
    """sending → sent for this very attempt; False if the lease was lost meanwhile."""
    result = session.execute(
        update(Notification).where(Notification.id == notification.id,
                                   Notification.status == "sending",
                                   Notification.attempts == notification.attempts)
        .values(status="sent", sent_at=utcnow(), lease_until=None, error_code=None,
                error_message=None))
    return result.rowcount == 1


def retry_later(session: Session, notification: Notification, first_delay: int,
                code: str, message: str) -> timedelta | None:
    """A temporary failure: back to the queue after an exponential delay, or failed for good
    after MAX_ATTEMPTS. Returns the delay, None when it failed."""
    if notification.attempts >= MAX_ATTEMPTS:
        fail(session, notification, code, message + " (après plusieurs tentatives)")
        return None
    delay = timedelta(seconds=min(first_delay * 2 ** (notification.attempts - 1), 6 * 3600))
    notification.status, notification.lease_until = "queued", None
    notification.next_attempt_at = utcnow() + delay
    notification.error_code, notification.error_message = code, message[:400]
    session.flush()
    return delay


def wait_for_attachment(session: Session, notification: Notification, delay: int) -> None:
    """The attached document is still being built: not an attempt, just later."""
    notification.status, notification.lease_until = "queued", None
    notification.attempts -= 1
    notification.next_attempt_at = utcnow() + timedelta(seconds=delay)
    session.flush()


def fail(session: Session, notification: Notification, code: str, message: str) -> None:
    """A permanent failure, shown to administrators; never retried automatically."""
    notification.status, notification.lease_until = "failed", None
    notification.error_code, notification.error_message = code, message[:400]
    session.flush()


def retry_failed(session: Session, vault: Vault, notification: Notification) -> None:
    """An administrator sends a failed message again (after fixing the address); audited."""
    if notification.status != "failed":
        raise InvalidTransitionError("Ce courriel n'est pas en échec.")
    notification.status, notification.attempts = "queued", 0
    notification.next_attempt_at = notification.enqueued_at = None
    session.flush()
    audit.record(session, vault.keyring, vault.actor, "notification_retried",
                 object_type="notifications", object_ids=[notification.id])


def counts_by_state(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Notification.status, func.count())
                                .group_by(Notification.status)).all())


def failures(session: Session, limit: int = 100) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.status == "failed")
                                .order_by(Notification.id.desc()).limit(limit)))


def recipient_address(notification: Notification) -> str:
    """The staff or member address the message goes to ("" when there is none any more)."""
    if notification.user is not None:
        return notification.user.email if notification.user.active else ""
    if notification.meeting_member is not None:
        return notification.meeting_member.member.email
    if notification.member is not None:
        return notification.member.email if notification.member.active else ""
    return ""


# -- convocation answer links ---------------------------------------------------------------
LINK_REFUSED = ("Ce lien de réponse n'est plus valable. Contactez l'animation de l'instance "
                "pour répondre.")


def answer_token(secret: str, row: MeetingMember, now: datetime | None = None) -> str:
    """A link token for one member of one session: works until the session starts (at most
    ANSWER_LINK_TTL), once; it carries ids only."""
    now = (now or utcnow()).replace(tzinfo=UTC)
    starts = row.meeting.starts_at.replace(tzinfo=PARIS)  # sessions are in local time
    expires = min(now + ANSWER_LINK_TTL, starts)
    return URLSafeSerializer(secret, salt=ANSWER_SALT).dumps(
        {"m": row.meeting_id, "i": row.id, "n": row.answer_nonce or "",
         "e": int(expires.timestamp())})


def invitation_for(session: Session, secret: str, meeting_id: int, token: str,
                   now: datetime | None = None) -> MeetingMember:
    """The invitation a link designates, or InvalidInputError (used, expired, forged, or for
    another session). The message says nothing about which."""
    refused = InvalidInputError(LINK_REFUSED)
    try:
        data = URLSafeSerializer(secret, salt=ANSWER_SALT).loads(token)
        row_id, nonce, expires = int(data["i"]), str(data["n"]), int(data["e"])
        for_meeting = int(data["m"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise refused from None
    now = now or utcnow()
    row = session.get(MeetingMember, row_id)
    if (row is None or for_meeting != meeting_id or row.meeting_id != meeting_id
            or not row.answer_nonce or not hmac.compare_digest(row.answer_nonce, nonce)
            or expires <= now.replace(tzinfo=UTC).timestamp()
            or row.meeting.state not in ANSWER_STATES):
        raise refused
    return row


def use_answer_link(session: Session, row: MeetingMember) -> None:
    """Spend the link before recording its answer: a compare-and-swap on its nonce, so of two
    answers sent at once through one link, the second waits for the first, then is refused."""
    spent = session.execute(update(MeetingMember).where(
        MeetingMember.id == row.id, MeetingMember.answer_nonce == row.answer_nonce,
        MeetingMember.answer_nonce.is_not(None)).values(answer_nonce=None))
    if spent.rowcount != 1:
        raise InvalidInputError(LINK_REFUSED)
    session.expire(row, ["answer_nonce"])
