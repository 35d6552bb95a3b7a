"""The calendar: schedules, planned sessions, postponement, deadlines."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.domain import audit
from shared.domain.meetings.agenda import (
    add_screened_partnership_item,
    inscribe_sheet,
    purged,
)
from shared.domain.meetings.lifecycle import transition
from shared.domain.meetings.members import invite_members
from shared.domain.meetings.states import TEXT_LIMIT, TIME_RE, audit_meeting
from shared.encrypted import Vault
from shared.errors import InvalidInputError
from shared.models import Circonscription, Meeting, Schedule
from shared.text import clean_text


def nth_weekday(year: int, month: int, weekday: int, week: int) -> date:
    """The ``week``-th ``weekday`` of the month (week -1: the last one)."""
    days = [d for d in calendar.Calendar().itermonthdates(year, month)
            if d.month == month and d.weekday() == weekday]
    return days[week - 1] if week > 0 else days[-1]


def save_schedule(session: Session, circonscription: Circonscription, *, weekday: int,
                  week_of_month: int, at: str, place: str, video_link: str, cutoff_days: int,
                  dossier_days: int) -> Schedule:
    if not 0 <= weekday <= 4:
        raise InvalidInputError("Choisissez un jour ouvré (lundi à vendredi).")
    if week_of_month not in (1, 2, 3, 4, -1):
        raise InvalidInputError("Semaine du mois : 1re à 4e, ou dernière.")
    if not TIME_RE.match(at):
        raise InvalidInputError("Heure au format HH:MM.")
    place = clean_text(place, label="Lieu", limit=TEXT_LIMIT)
    if not place and not video_link.strip():
        raise InvalidInputError("Indiquez un lieu ou un lien de visioconférence.")
    _check_link(video_link)
    if not (1 <= dossier_days <= cutoff_days <= 60):
        raise InvalidInputError("Délais : l'envoi du dossier (J-y) doit suivre la date limite "
                                "des fiches (J-x), entre 1 et 60 jours avant la séance.")
    schedule = session.scalar(select(Schedule).where(
        Schedule.circonscription_id == circonscription.id))
    if schedule is None:
        schedule = Schedule(circonscription_id=circonscription.id)
        session.add(schedule)
    schedule.weekday, schedule.week_of_month, schedule.time = weekday, week_of_month, at
    schedule.place, schedule.video_link = place, video_link.strip()
    schedule.cutoff_days, schedule.dossier_days = cutoff_days, dossier_days
    session.flush()
    return schedule


def save_schedule_and_plan(session: Session, vault: Vault, circonscription: Circonscription, *,
                           weekday: int, week_of_month: int, at: str, place: str,
                           video_link: str, cutoff_days: int, dossier_days: int,
                           months: int = 3, today: date | None = None
                           ) -> tuple[Schedule, list[Meeting]]:
    """A facilitator sets the circonscription's calendar: saved, the sessions of the next
    ``months`` months planned from it, audited (``schedule_saved``)."""
    schedule = save_schedule(session, circonscription, weekday=weekday,
                             week_of_month=week_of_month, at=at, place=place,
                             video_link=video_link, cutoff_days=cutoff_days,
                             dossier_days=dossier_days)
    created = plan_from_schedule(session, schedule, months=months, today=today)
    audit.record(session, vault.keyring, vault.actor, "schedule_saved",
                 object_type="circonscriptions", object_ids=[circonscription.id])
    return schedule, created


def _check_link(link: str) -> None:
    if link.strip() and not re.match(r"^https://[^\s<>\"']{4,290}$", link.strip()):
        raise InvalidInputError("Le lien de visioconférence doit commencer par https://.")


def plan_from_schedule(session: Session, schedule: Schedule, months: int = 3,
                       today: date | None = None) -> list[Meeting]:
    """Create the sessions of the next ``months`` months that do not exist yet."""
    today = today or date.today()
    hour, minute = map(int, schedule.time.split(":"))
    created = []
    year, month = today.year, today.month
    for _ in range(months):
        day = nth_weekday(year, month, schedule.weekday, schedule.week_of_month)
        if day >= today:
            start, end = datetime(year, month, 1), datetime(year, month, 1) + timedelta(days=32)
            exists = session.scalar(select(Meeting.id).where(
                Meeting.circonscription_id == schedule.circonscription_id,
                Meeting.starts_at >= start, Meeting.starts_at < end.replace(day=1),
                Meeting.state.not_in(("annulee", "reportee"))))
            if exists is None:
                created.append(create_meeting(
                    session, schedule.circonscription, datetime.combine(day, time(hour, minute)),
                    schedule.place, video_link=schedule.video_link,
                    cutoff_days=schedule.cutoff_days, dossier_days=schedule.dossier_days,
                    today=today))
        month = month % 12 + 1
        year += month == 1
    return created


def create_meeting(session: Session, circonscription: Circonscription, starts_at: datetime,
                   place: str, *, video_link: str = "", cutoff_days: int = 10,
                   dossier_days: int = 5, today: date | None = None) -> Meeting:
    """A new session, its permanent members invited. Never in the past: ``today`` is the day
    it is planned on (by default, today)."""
    if starts_at.date() < (today or date.today()):
        raise InvalidInputError("Une séance ne peut pas être planifiée dans le passé.")
    place = clean_text(place, label="Lieu", limit=TEXT_LIMIT)
    if not place and not video_link.strip():
        raise InvalidInputError("Indiquez un lieu ou un lien de visioconférence.")
    _check_link(video_link)
    meeting = Meeting(circonscription_id=circonscription.id, starts_at=starts_at,
                      place=place, video_link=video_link.strip(), state="planifiee",
                      cutoff_days=cutoff_days, dossier_days=dossier_days)
    session.add(meeting)
    session.flush()
    invite_members(session, meeting)
    return meeting


def plan_meeting(session: Session, vault: Vault, circonscription: Circonscription,
                 starts_at: datetime, place: str, *, video_link: str = "",
                 today: date | None = None) -> Meeting:
    """A facilitator plans one session (``create_meeting``'s rules), audited
    (``meeting_created``)."""
    meeting = create_meeting(session, circonscription, starts_at, place, video_link=video_link,
                             today=today)
    audit_meeting(session, vault, "created", meeting)
    return meeting


def postpone(session: Session, vault: Vault, meeting: Meeting, new_start: datetime,
             reason: str, dismissals: dict[str, str] | None = None, *,
             today: date | None = None) -> Meeting:
    """Report the session to a new date, after today and after the planned one: a new
    session takes over its pending agenda."""
    today = today or date.today()
    if new_start.date() <= today:
        raise InvalidInputError("Une séance ne peut être reportée qu'à une date à venir, pas "
                                "dans le passé ni à aujourd'hui.")
    if new_start <= meeting.starts_at:
        raise InvalidInputError("La nouvelle date doit être postérieure à la date prévue.")
    if new_start > meeting.starts_at + timedelta(days=366):  # a typo, not a monthly instance
        raise InvalidInputError("La nouvelle date doit être dans les douze mois qui suivent.")
    replacement = create_meeting(session, meeting.circonscription, new_start, meeting.place,
                                 video_link=meeting.video_link, cutoff_days=meeting.cutoff_days,
                                 dossier_days=meeting.dossier_days, today=today)
    pending = [i for i in meeting.items if not i.outcome]
    transition(session, vault, meeting, "postpone", reason=reason, dismissals=dismissals)
    meeting.postponed_to_id = replacement.id
    for item in pending:
        if item.sheet is None:  # texts screened when the item was added
            add_screened_partnership_item(session, vault, replacement, item.title,
                                  presenter_structure=item.presenter_structure,
                                  presenter_role=item.presenter_role, time_slot=item.time_slot,
                                  duration_minutes=item.duration_minutes)
        elif item.sheet.status == "ajournee" and not purged(item.sheet):
            # Two sheets of one person: confirmed already. A purged person's sheet stays.
            inscribe_sheet(session, vault, replacement, item.sheet, item.time_slot,
                           part=item.part, icag_kind=item.icag_kind,
                           same_person_confirmed=True)
    session.flush()
    return replacement


def deadlines(meeting: Meeting) -> dict[str, date]:
    return {"cutoff": meeting.day - timedelta(days=meeting.cutoff_days),
            "dossier": meeting.day - timedelta(days=meeting.dossier_days)}


