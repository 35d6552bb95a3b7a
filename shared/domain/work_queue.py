"""What each role has to do next, for its home page (issue 22): counts of the sheets,
sessions, decisions and jobs waiting on them, and the next sessions with their deadlines.

Counts and dates only: nothing here decrypts, so the home page writes no audit row. A user
with several roles gets each role's part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from shared.db import utc_to_paris, utcnow
from shared.domain import decisions, job_board, retention
from shared.domain.meetings.followup import open_actions, situations_to_bring_back
from shared.domain.sheets import facilitator_sheets_query, referent_sheets_query
from shared.models import (
    AgendaItem,
    GeneratedDocument,
    Meeting,
    Notification,
    Sheet,
    SheetEvent,
    User,
)

# A situation whose return date falls within this horizon is announced (as the follow-up
# page does), and fiches retour this recent are "ready".
HORIZON = timedelta(days=30)
REVEALS_SINCE = timedelta(days=7)
# Sessions still ahead of their facilitator: from planning to the signed minutes.
OPEN_MEETING_STATES = ("planifiee", "odj_en_construction", "convoquee")


@dataclass(frozen=True)
class Inscription:
    """A referent's sheet on a coming session's agenda."""

    sheet_id: int
    reference: str
    starts_at: datetime  # a session's time, as every session's: Paris wall time
    time_slot: str


@dataclass(frozen=True)
class ComingMeeting:
    """A facilitator's next session and its two deadlines: sheets inscribed by the cut-off,
    the dossier sent by its own date."""

    meeting: Meeting
    cutoff_on: date
    dossier_on: date
    situations: int  # on the agenda
    candidates: int  # its circonscription's sheets declared receivable, not inscribed yet
    dossier_ready: bool


@dataclass
class WorkQueue:
    referent: dict[str, int] = field(default_factory=dict)
    inscriptions: list[Inscription] = field(default_factory=list)
    facilitator: dict[str, int] = field(default_factory=dict)
    coming: list[ComingMeeting] = field(default_factory=list)
    director: dict[str, int] = field(default_factory=dict)
    admin: dict[str, int] = field(default_factory=dict)
    dpo: dict[str, int] = field(default_factory=dict)


def work_queue(session: Session, user: User, *, retention_policy: retention.Policy,
               now: datetime | None = None) -> WorkQueue:
    """Each of ``user``'s roles' waiting work, as of ``now`` (UTC)."""
    now = now or utcnow()
    local = utc_to_paris(now)  # sessions are set in Paris wall time
    queue = WorkQueue()
    if user.has_role("referent"):
        _referent(session, user, queue, now, local)
    if user.has_role("facilitator"):
        _facilitator(session, user, queue, local)
    if user.has_role("director"):
        queue.director = {
            "minutes_to_sign": _count(select(Meeting.id)
                                      .where(Meeting.state == "pv_en_signature"), session),
            "formal_decisions": len(decisions.pending(session, institutions=user.institutions)),
        }
    if user.has_role("admin"):
        totals = job_board.totals_by_state(job_board.counts_by_kind_and_state(session))
        queue.admin = {
            "failed_jobs": totals.get("failed", 0),
            "stuck_jobs": len(job_board.stuck_jobs(session, now)),
            "failed_mails": _count(select(Notification.id)
                                   .where(Notification.status == "failed"), session),
        }
    if user.has_role("dpo"):
        queue.dpo = {
            "reveals": _count(select(SheetEvent.id).where(
                SheetEvent.action == "reveal_identity", SheetEvent.at >= now - REVEALS_SINCE),
                session),
            "retention_due": len(retention.due_people(session, retention_policy, now))
            + len(retention.due_dossiers(session, retention_policy, now)),
        }
    return queue


def _referent(session: Session, user: User, queue: WorkQueue, now: datetime,
              local: datetime) -> None:
    mine = referent_sheets_query(user)
    by_state = dict(session.execute(mine.with_only_columns(Sheet.status, func.count())
                                    .group_by(Sheet.status).order_by(None)).all())
    own = mine.with_only_columns(Sheet.id).order_by(None)
    queue.referent = {
        "drafts": by_state.get("brouillon", 0),
        "to_complete": by_state.get("a_completer", 0),
        "to_update": by_state.get("retour", 0),
        "inscribed": by_state.get("inscrite", 0),
        "feedback_ready": _count(select(GeneratedDocument.sheet_id).distinct().where(
            GeneratedDocument.kind == "feedback", GeneratedDocument.sheet_id.in_(own),
            GeneratedDocument.created_at >= now - HORIZON), session),
    }
    rows = session.execute(
        select(Sheet.id, Sheet.reference, Meeting.starts_at, AgendaItem.time_slot)
        .join(AgendaItem, AgendaItem.sheet_id == Sheet.id)
        .join(Meeting, Meeting.id == AgendaItem.meeting_id)
        .where(Sheet.id.in_(own), Sheet.status == "inscrite",
               Meeting.state.in_(OPEN_MEETING_STATES), Meeting.starts_at >= local)
        .order_by(Meeting.starts_at, AgendaItem.time_slot))
    queue.inscriptions = [Inscription(*row) for row in rows]


def _facilitator(session: Session, user: User, queue: WorkQueue, local: datetime) -> None:
    scope, today = user.circonscription_ids, local.date()
    in_scope = select(Meeting.id).where(Meeting.circonscription_id.in_(scope or {-1}))
    queue.facilitator = {
        "to_screen": _count(facilitator_sheets_query(user).with_only_columns(Sheet.id)
                            .where(Sheet.status == "soumise").order_by(None), session),
        "avis_to_record": _count(in_scope.where(Meeting.state == "tenue"), session),
        "minutes_to_write": _count(in_scope.where(Meeting.state == "avis_saisis"), session),
        "minutes_to_send": _count(in_scope.where(Meeting.state == "pv_redige"), session),
        "formal_decisions": len(decisions.pending(session, circonscription_ids=scope)),
        "late_actions": sum(action.due_on is not None and action.due_on < today
                            for action in open_actions(session, scope)),
        "bring_back": len(situations_to_bring_back(session, scope, today + HORIZON)),
    }
    # Receivable sheets not inscribed yet, by circonscription: each session is told its own.
    candidates = dict(session.execute(
        facilitator_sheets_query(user).with_only_columns(Sheet.circonscription_id, func.count())
        .where(Sheet.status == "recevable").group_by(Sheet.circonscription_id)
        .order_by(None)).all())
    for meeting in session.scalars(
            select(Meeting).where(Meeting.circonscription_id.in_(scope or {-1}),
                                  Meeting.state.in_(OPEN_MEETING_STATES),
                                  Meeting.starts_at >= local)
            .order_by(Meeting.starts_at).limit(len(scope) or 1)):
        day = meeting.starts_at.date()
        queue.coming.append(ComingMeeting(
            meeting=meeting,
            cutoff_on=day - timedelta(days=meeting.cutoff_days),
            dossier_on=day - timedelta(days=meeting.dossier_days),
            situations=sum(item.sheet_id is not None for item in meeting.items),
            candidates=candidates.get(meeting.circonscription_id, 0),
            dossier_ready=_count(select(GeneratedDocument.id).where(
                GeneratedDocument.meeting_id == meeting.id,
                GeneratedDocument.kind == "dossier"), session) > 0))


def _count(query: Select, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0
