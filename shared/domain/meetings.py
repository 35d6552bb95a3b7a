"""Sessions (séances): calendar, members, agenda, examination and the session lifecycle.

planifiée → ODJ en construction → convoquée → tenue → avis saisis → PV rédigé →
PV en signature → PV signé / diffusé → clôturée, plus annulée and reportée. Every change is
guarded here; views only offer the actions ``allowed_actions`` returns.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import audit
from shared.domain import documents, notifications, returns
from shared.domain.screening import (
    SessionFinding,
    TextsNeedReviewError,
    audit_dismissals,
    review_session_texts,
)
from shared.domain.sheet_workflow import transition as sheet_transition
from shared.domain.sheets import person_identities, read_values
from shared.domain.users import EMAIL_RE, normalise_email
from shared.encrypted import Vault
from shared.errors import InvalidInput, InvalidTransition
from shared.models import (
    AgendaItem,
    Beneficiary,
    Circonscription,
    Decision,
    DecisionAction,
    Meeting,
    MeetingMember,
    Member,
    Schedule,
    Sheet,
    Structure,
)
from shared.models.meeting import (
    ANSWERS,
    ATTENDANCE,
    FORMAL_DECISION,
    ICAG_KINDS,
    MEETING_STATES,
)
from shared.sheet_schema import FIELDS_BY_NAME
from shared.text import clean_text, has_control

TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
PRESENTER_LIMIT = 160
TEXT_LIMIT = 200
MOTIVATION_LIMIT = 2000
ACTION_LIMIT = 300
GUARD_PURPOSE = "contrôle des textes saisis en séance"


@dataclass(frozen=True)
class MeetingTransition:
    sources: frozenset[str]
    target: str
    label: str
    needs_reason: bool = False


TRANSITIONS = {
    "build_agenda": MeetingTransition(frozenset({"planifiee"}), "odj_en_construction",
                                      "ouvrir l'ordre du jour"),
    "convene": MeetingTransition(frozenset({"odj_en_construction"}), "convoquee",
                                 "convoquer (figer l'ordre du jour)"),
    "hold": MeetingTransition(frozenset({"convoquee"}), "tenue", "tenir la séance"),
    "finish_avis": MeetingTransition(frozenset({"tenue"}), "avis_saisis",
                                     "clore la saisie des avis"),
    "write_minutes": MeetingTransition(frozenset({"avis_saisis"}), "pv_redige",
                                       "marquer le PV rédigé"),
    "send_minutes": MeetingTransition(frozenset({"pv_redige"}), "pv_en_signature",
                                      "envoyer le PV en signature"),
    "sign_minutes": MeetingTransition(frozenset({"pv_en_signature"}), "pv_signe",
                                      "marquer le PV signé et diffusé"),
    "close": MeetingTransition(frozenset({"pv_signe"}), "cloturee", "clôturer la séance"),
    "cancel": MeetingTransition(frozenset({"planifiee", "odj_en_construction", "convoquee"}),
                                "annulee", "annuler la séance", needs_reason=True),
    "postpone": MeetingTransition(frozenset({"planifiee", "odj_en_construction", "convoquee"}),
                                  "reportee", "reporter la séance", needs_reason=True),
}

# What else may be done in each state (beyond the transitions above).
AGENDA_OPEN = {"planifiee", "odj_en_construction"}
LATE_ADDITION = {"convoquee", "tenue"}
ANSWER_STATES = {"planifiee", "odj_en_construction", "convoquee"}
ATTENDANCE_STATES = {"convoquee", "tenue"}
AVIS_STATES = {"tenue"}
ADJOURN_STATES = {"odj_en_construction", "convoquee", "tenue"}


def allowed_actions(meeting: Meeting, today: date | None = None) -> set[str]:
    """Transitions and operations allowed now: what the session page offers."""
    today = today or date.today()
    actions = {name for name, rule in TRANSITIONS.items() if meeting.state in rule.sources}
    if meeting.state in AGENDA_OPEN:
        actions |= {"add_item", "inscribe", "reorder", "remove_item"}
    if meeting.state in LATE_ADDITION:
        actions |= {"add_item", "inscribe"}  # late, urgent additions: a new dossier version
    if meeting.state in ANSWER_STATES:
        actions.add("record_answers")
    if meeting.state in ATTENDANCE_STATES and today >= meeting.day:
        actions.add("record_attendance")
    if meeting.state in AVIS_STATES:
        actions.add("record_avis")
    if meeting.state in ADJOURN_STATES:
        actions.add("adjourn")
    if "hold" in actions and today < meeting.day:
        actions.discard("hold")
    return actions


def _require(meeting: Meeting, action: str, today: date | None = None) -> None:
    if action not in allowed_actions(meeting, today):
        if action == "record_attendance" and meeting.state in ATTENDANCE_STATES:
            raise InvalidTransition("Les présences se saisissent le jour de la séance ou après.")
        if action == "hold" and meeting.state == "convoquee":
            raise InvalidTransition("La séance ne peut être tenue avant sa date.")
        raise InvalidTransition(
            f"Action impossible : la séance est « {MEETING_STATES[meeting.state]} »."
        )


def _record(session: Session, vault: Vault, action: str, meeting: Meeting, **kwargs) -> None:
    audit.record(session, vault.keyring, vault.actor, f"meeting_{action}",
                 object_type="meetings", object_ids=[meeting.id], **kwargs)


def transition(session: Session, vault: Vault, meeting: Meeting, action: str, *,
               reason: str = "", today: date | None = None,
               dismissals: dict[str, str] | None = None) -> None:
    """Move the session, or raise a French error and change nothing (``dismissals``: for
    a cancellation or postponement reason, see ``shared.domain.screening``)."""
    rule = TRANSITIONS[action]
    _require(meeting, action, today)
    reason = clean_text(reason, label="Motif", limit=500, multiline=True)
    if rule.needs_reason and not reason:
        raise InvalidInput(f"Indiquez le motif pour {rule.label}.")
    if action == "convene" and not meeting.items:
        raise InvalidInput("L'ordre du jour est vide : inscrivez au moins un point.")
    if action == "hold" and not any(m.attendance in ("present", "remplace")
                                    for m in meeting.members):
        raise InvalidInput("Saisissez d'abord les présences : aucun membre n'est présent.")
    if action == "send_minutes" and documents.latest_document(session, meeting.id,
                                                              "minutes") is None:
        raise InvalidInput("Générez d'abord le procès-verbal : c'est lui que les directions "
                           "viseront.")
    if action == "finish_avis":
        pending = [i for i in meeting.items if i.sheet_id and not i.outcome]
        if pending:
            raise InvalidInput(f"{len(pending)} situation(s) sans avis ni ajournement.")
    if action == "convene":
        invite_members(session, meeting)  # members added since the session was planned
        meeting.frozen_version = meeting.content_version
    if action in ("cancel", "postpone"):
        dismissed = _screen_release_reason(session, vault, meeting, reason, dismissals or {})
        meeting.state_reason = reason
        _release_sheets(session, vault, meeting, reason)
        audit_dismissals(session, vault, "meetings", meeting.id, dismissed, dismissals or {})
    if action == "close":
        _close_sheets(session, vault, meeting)
    meeting.state = rule.target
    if action == "convene" and (today or date.today()) <= meeting.day:
        # The frozen agenda, attached to each member's convocation (none for a past session,
        # e.g. one recorded afterwards).
        agenda = documents.request_document(session, meeting, "agenda", vault.actor.user_id)
        notifications.convoke(session, meeting, agenda)
    if action == "send_minutes":
        notifications.minutes_sent(session, meeting)
    _record(session, vault, action, meeting)
    session.flush()


def _screen_release_reason(session: Session, vault: Vault, meeting: Meeting, reason: str,
                           dismissals: dict[str, str]) -> list[SessionFinding]:
    """The reason becomes the adjournment reason of every pending situation, in the PV and
    its fiche retour: checked against each person's identity (issue 15). Returns the
    dismissed findings (the same for every person: only their own identity differs, and
    it is never dismissed)."""
    intro = ("Séance inchangée : le motif devient celui de l'ajournement de chaque situation "
             "inscrite, au procès-verbal et sur les fiches retour ; il ne doit désigner "
             "personne. Reformulez :")
    identities = [identity for item in meeting.items
                  if item.sheet is not None and not item.outcome
                  for identity in person_identities(session, vault, item.sheet.beneficiary,
                                                    GUARD_PURPOSE)]
    return review_session_texts(session, {"Motif": reason}, identities, dismissals, intro)


def _release_sheets(session: Session, vault: Vault, meeting: Meeting, reason: str) -> None:
    """A cancelled or postponed session gives its pending sheets back, proposed next time."""
    for item in meeting.items:
        if item.sheet is not None and not item.outcome and item.sheet.status == "inscrite":
            item.outcome, item.adjourn_reason = "ajourne", f"Séance annulée ou reportée : {reason}"
            sheet_transition(session, vault, item.sheet, "adjourn", actor_id=vault.actor.user_id,
                             reason=item.adjourn_reason, meeting=meeting)


def _close_sheets(session: Session, vault: Vault, meeting: Meeting) -> None:
    """Examined sheets go to follow-up when something remains to do, else they close."""
    for decision in session.scalars(select(Decision).where(Decision.meeting_id == meeting.id)):
        sheet = decision.sheet
        if sheet.status != "avis_rendu":
            continue
        pending = decision.come_back_on or any(a.done_on is None for a in decision.actions)
        sheet_transition(session, vault, sheet, "follow" if pending else "close",
                         actor_id=vault.actor.user_id)


# -- calendar ---------------------------------------------------------------------------------
def nth_weekday(year: int, month: int, weekday: int, week: int) -> date:
    """The ``week``-th ``weekday`` of the month (week -1: the last one)."""
    days = [d for d in calendar.Calendar().itermonthdates(year, month)
            if d.month == month and d.weekday() == weekday]
    return days[week - 1] if week > 0 else days[-1]


def save_schedule(session: Session, circonscription: Circonscription, *, weekday: int,
                  week_of_month: int, at: str, place: str, video_link: str, cutoff_days: int,
                  dossier_days: int) -> Schedule:
    if not 0 <= weekday <= 4:
        raise InvalidInput("Choisissez un jour ouvré (lundi à vendredi).")
    if week_of_month not in (1, 2, 3, 4, -1):
        raise InvalidInput("Semaine du mois : 1re à 4e, ou dernière.")
    if not TIME_RE.match(at):
        raise InvalidInput("Heure au format HH:MM.")
    place = clean_text(place, label="Lieu", limit=TEXT_LIMIT)
    if not place and not video_link.strip():
        raise InvalidInput("Indiquez un lieu ou un lien de visioconférence.")
    _check_link(video_link)
    if not (1 <= dossier_days <= cutoff_days <= 60):
        raise InvalidInput("Délais : l'envoi du dossier (J-y) doit suivre la date limite "
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


def _check_link(link: str) -> None:
    if link.strip() and not re.match(r"^https://[^\s<>\"']{4,290}$", link.strip()):
        raise InvalidInput("Le lien de visioconférence doit commencer par https://.")


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
                    cutoff_days=schedule.cutoff_days, dossier_days=schedule.dossier_days))
        month = month % 12 + 1
        year += month == 1
    return created


def create_meeting(session: Session, circonscription: Circonscription, starts_at: datetime,
                   place: str, *, video_link: str = "", cutoff_days: int = 10,
                   dossier_days: int = 5) -> Meeting:
    place = clean_text(place, label="Lieu", limit=TEXT_LIMIT)
    if not place and not video_link.strip():
        raise InvalidInput("Indiquez un lieu ou un lien de visioconférence.")
    _check_link(video_link)
    meeting = Meeting(circonscription_id=circonscription.id, starts_at=starts_at,
                      place=place, video_link=video_link.strip(), state="planifiee",
                      cutoff_days=cutoff_days, dossier_days=dossier_days)
    session.add(meeting)
    session.flush()
    invite_members(session, meeting)
    return meeting


def postpone(session: Session, vault: Vault, meeting: Meeting, new_start: datetime,
             reason: str, dismissals: dict[str, str] | None = None) -> Meeting:
    """Report the session to a new date: a new session takes over its pending agenda."""
    if new_start.date() <= date.today() or new_start <= meeting.starts_at:
        raise InvalidInput("La nouvelle date doit être postérieure à la date prévue.")
    if new_start > meeting.starts_at + timedelta(days=366):  # a typo, not a monthly instance
        raise InvalidInput("La nouvelle date doit être dans les douze mois qui suivent.")
    replacement = create_meeting(session, meeting.circonscription, new_start, meeting.place,
                                 video_link=meeting.video_link, cutoff_days=meeting.cutoff_days,
                                 dossier_days=meeting.dossier_days)
    pending = [i for i in meeting.items if not i.outcome]
    transition(session, vault, meeting, "postpone", reason=reason, dismissals=dismissals)
    meeting.postponed_to_id = replacement.id
    for item in pending:
        if item.sheet is None:  # texts screened when the item was added
            _add_partnership_item(session, vault, replacement, item.title,
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


# -- members --------------------------------------------------------------------------------
def save_member(session: Session, member: Member | None, *, circonscription_id: int,
                structure_id: int | None, name: str, function: str, kind: str, acco_glo: bool,
                active: bool, email: str = "") -> Member:
    name = clean_text(name, label="Nom", limit=160, required=True)
    function = clean_text(function, label="Fonction", limit=160)
    email = normalise_email(email)
    if email and (not EMAIL_RE.match(email) or len(email) > 254 or has_control(email)):
        raise InvalidInput("Adresse e-mail invalide.")
    if kind not in ("permanent", "invite"):
        raise InvalidInput("Statut inconnu.")
    if structure_id and session.get(Structure, structure_id) is None:
        raise InvalidInput("Structure inconnue.")
    if member is None:
        member = Member(circonscription_id=circonscription_id)
        session.add(member)
    member.structure_id, member.name, member.function = structure_id, name, function
    member.kind, member.acco_glo, member.active = kind, acco_glo, active
    member.email = email
    session.flush()
    return member


def invite_members(session: Session, meeting: Meeting) -> None:
    """Permanent members always; invited ones (ACCO GLO) when AG items are on the agenda."""
    has_icag = any(item.part == "icag" for item in meeting.items)
    invited = {m.member_id for m in meeting.members}
    for member in session.scalars(select(Member).where(
            Member.circonscription_id == meeting.circonscription_id, Member.active.is_(True))):
        wanted = member.kind == "permanent" or (member.acco_glo and has_icag)
        if wanted and member.id not in invited:
            session.add(MeetingMember(meeting=meeting, member_id=member.id))
    session.flush()


def record_answers(session: Session, vault: Vault, meeting: Meeting,
                   answers: dict[int, tuple[str, str]]) -> None:
    """``answers``: meeting-member id -> (answer, replacement name)."""
    _require(meeting, "record_answers")
    _set_each(meeting, answers, "answer", ANSWERS)
    _record(session, vault, "answers", meeting)


def record_attendance(session: Session, vault: Vault, meeting: Meeting,
                      attendance: dict[int, tuple[str, str]], today: date | None = None) -> None:
    """Attendance, on or after the session day only."""
    _require(meeting, "record_attendance", today)
    _set_each(meeting, attendance, "attendance", ATTENDANCE, allow_empty=True)
    _record(session, vault, "attendance", meeting)


def _set_each(meeting: Meeting, entries: dict[int, tuple[str, str]], attribute: str,
              allowed: dict[str, str], allow_empty: bool = False) -> None:
    by_id = {m.id: m for m in meeting.members}
    for member_id, (value, replacement) in entries.items():
        row = by_id.get(member_id)
        if row is None:
            raise InvalidInput("Membre inconnu pour cette séance.")
        if value not in allowed and not (allow_empty and value == ""):
            raise InvalidInput("Réponse invalide.")
        replacement = clean_text(replacement, label="Remplaçant·e", limit=160)
        if value == "remplace" and not replacement:
            raise InvalidInput(f"Indiquez qui remplace {row.member.name}.")
        setattr(row, attribute, value)
        if value == "remplace" or attribute == "answer":
            row.replacement = replacement if value == "remplace" else ""


def attendance_counts(meeting: Meeting) -> dict[str, int]:
    counts = {key: 0 for key in ATTENDANCE}
    for row in meeting.members:
        if row.attendance in counts:
            counts[row.attendance] += 1
    return counts


# -- agenda ---------------------------------------------------------------------------------
def _next_position(session: Session, meeting: Meeting) -> int:
    last = session.scalar(select(func.max(AgendaItem.position))
                          .where(AgendaItem.meeting_id == meeting.id))
    return (last or 0) + 1


def _agenda_changed(meeting: Meeting, item: AgendaItem | None = None) -> None:
    meeting.content_version += 1
    if meeting.state == "planifiee":
        meeting.state = "odj_en_construction"
    if item is not None and meeting.state in LATE_ADDITION:
        item.late = True  # after the freeze: the dossier gets a new version


def add_partnership_item(session: Session, vault: Vault, meeting: Meeting, title: str, *,
                         presenter_structure: str, presenter_role: str, time_slot: str = "",
                         duration_minutes: int = 20,
                         dismissals: dict[str, str] | None = None) -> AgendaItem:
    """A non-case item (partenariat, interconnaissance, projet territorial): a title and its
    presenter as a structure and a role, texts that name no one (``dismissals``: finding key
    -> reason, see ``shared.domain.screening``; reference-list names are never findings)."""
    _require(meeting, "add_item")
    title = clean_text(title, label="Intitulé", limit=TEXT_LIMIT, required=True)
    presenter_structure = clean_text(presenter_structure, label="Structure qui présente",
                                     limit=PRESENTER_LIMIT, required=True)
    presenter_role = clean_text(presenter_role, label="Fonction de la personne qui présente",
                                limit=PRESENTER_LIMIT, required=True)
    dismissals = dismissals or {}
    dismissed = review_session_texts(
        session, {"Intitulé": title, "Structure qui présente": presenter_structure,
                  "Fonction de la personne qui présente": presenter_role}, (), dismissals,
        "Point non ajouté : ces textes figurent dans tous les documents de la séance, ils ne "
        "doivent désigner personne (indiquez une structure et une fonction, pas un nom). "
        "Reformulez :")
    item = _add_partnership_item(session, vault, meeting, title,
                                 presenter_structure=presenter_structure,
                                 presenter_role=presenter_role, time_slot=time_slot,
                                 duration_minutes=duration_minutes)
    audit_dismissals(session, vault, "agenda_items", item.id, dismissed, dismissals)
    return item


def _add_partnership_item(session: Session, vault: Vault, meeting: Meeting, title: str, *,
                          presenter_structure: str, presenter_role: str, time_slot: str,
                          duration_minutes: int) -> AgendaItem:
    if time_slot and not TIME_RE.match(time_slot):
        raise InvalidInput("Créneau invalide : une heure de 00:00 à 23:59.")
    if not 5 <= duration_minutes <= 240:
        raise InvalidInput("Durée entre 5 et 240 minutes.")
    item = AgendaItem(meeting=meeting, part="partenariat", title=title,
                      presenter_structure=presenter_structure, presenter_role=presenter_role,
                      time_slot=time_slot, duration_minutes=duration_minutes,
                      position=_next_position(session, meeting))
    session.add(item)
    _agenda_changed(meeting, item)
    _record(session, vault, "item_added", meeting)
    session.flush()
    return item


def candidate_sheets(session: Session, meeting: Meeting) -> list[Sheet]:
    """Screened sheets of the circonscription not yet on an agenda; adjourned ones first.
    A sheet adjourned from this very session goes to another one (issue 15); a purged
    person's sheet goes to none."""
    on_this_agenda = select(AgendaItem.id).where(AgendaItem.meeting_id == meeting.id,
                                                 AgendaItem.sheet_id == Sheet.id)
    return list(session.scalars(
        select(Sheet).join(Beneficiary, Beneficiary.id == Sheet.beneficiary_id)
        .where(Sheet.circonscription_id == meeting.circonscription_id,
               Sheet.status.in_(("recevable", "ajournee")), Beneficiary.purged_at.is_(None),
               ~on_this_agenda.exists())
        .order_by((Sheet.status == "ajournee").desc(), Sheet.urgent.desc(),
                  Sheet.submitted_at)))


class SamePersonOnAgendaError(InvalidInput):
    """Another sheet of the same person is already on the agenda (issue 15): the facilitator
    confirms explicitly (audited) or chooses another session."""

    def __init__(self, references: list[str]) -> None:
        super().__init__("Attention : une autre fiche de la même personne est déjà à l'ordre "
                         f"du jour de cette séance ({', '.join(references)}). Cochez la "
                         "confirmation pour l'inscrire quand même, ou choisissez une autre "
                         "séance.")


def same_person_items(meeting: Meeting) -> dict[int, list[AgendaItem]]:
    """Beneficiary id -> the items of this agenda about them, where there are several."""
    by_person: dict[int, list[AgendaItem]] = {}
    for item in meeting.items:
        if item.sheet is not None and item.outcome != "ajourne":
            by_person.setdefault(item.sheet.beneficiary_id, []).append(item)
    return {person: items for person, items in by_person.items() if len(items) > 1}


def inscribe_sheet(session: Session, vault: Vault, meeting: Meeting, sheet: Sheet,
                   time_slot: str, *, part: str = "situation", icag_kind: str = "",
                   duration_minutes: int = 20, same_person_confirmed: bool = False
                   ) -> AgendaItem:
    """Put a screened sheet on the agenda at a time slot (each referent attends their own).

    A second sheet of a person already on the agenda needs ``same_person_confirmed``."""
    _require(meeting, "inscribe")
    if part not in ("situation", "icag"):
        raise InvalidInput("Partie de l'ordre du jour inconnue.")
    if part == "icag" and icag_kind not in ICAG_KINDS:
        raise InvalidInput("Précisez s'il s'agit d'une entrée, d'un renouvellement ou "
                           "d'une sortie d'accompagnement global.")
    if not TIME_RE.match(time_slot):
        raise InvalidInput("Créneau invalide : une heure de 00:00 à 23:59.")
    if sheet.circonscription_id != meeting.circonscription_id:
        raise InvalidInput("La fiche relève d'une autre circonscription.")
    if purged(sheet):
        raise InvalidInput(f"La fiche {sheet.reference} ne peut plus être inscrite : les "
                           "données de la personne ont été effacées au terme de leur durée "
                           "de conservation.")
    earlier = [i for i in meeting.items if i.sheet_id == sheet.id]
    if any(not i.outcome for i in earlier):
        raise InvalidInput("La fiche est déjà inscrite à cette séance.")
    if earlier:  # one agenda item per sheet and session
        raise InvalidInput("La fiche a été ajournée de cette séance ou y a déjà été "
                           "examinée : inscrivez-la à une autre séance.")
    if part == "icag" and icag_kind == "entree" and _position(vault, sheet) == "desaccord":
        raise InvalidInput("Entrée en accompagnement global impossible : la position "
                           "enregistrée de la personne est « en désaccord ». Mettez à jour "
                           "la fiche si elle a changé d'avis.")
    same_person = [i for i in meeting.items if i.sheet is not None and i.outcome != "ajourne"
                   and i.sheet.beneficiary_id == sheet.beneficiary_id]
    if same_person and not same_person_confirmed:
        raise SamePersonOnAgendaError([i.sheet.reference for i in same_person])
    sheet_transition(session, vault, sheet, "inscribe", actor_id=vault.actor.user_id,
                     meeting=meeting)
    item = AgendaItem(meeting=meeting, part=part, sheet=sheet, time_slot=time_slot,
                      icag_kind=icag_kind if part == "icag" else "",
                      duration_minutes=duration_minutes,
                      position=_next_position(session, meeting))
    session.add(item)
    _agenda_changed(meeting, item)
    if part == "icag":
        invite_members(session, meeting)  # the ACCO GLO counsellor joins
    _record(session, vault, "sheet_inscribed", meeting, fields=[str(sheet.id)])
    if same_person:
        _record(session, vault, "same_person_inscribed", meeting,
                fields=[str(i.sheet_id) for i in same_person] + [str(sheet.id)])
    session.flush()
    return item


def purged(sheet: Sheet) -> bool:
    """Whether the retention shredded the sheet's content with its person's data: only its
    reference, status and dates remain, it goes on no agenda again."""
    return sheet.beneficiary.purged_at is not None


def _position(vault: Vault, sheet: Sheet) -> str:
    """The person's recorded position on the sheet (accord, désaccord…)."""
    spec = FIELDS_BY_NAME["position_personne"]
    values = read_values(vault, sheet, purpose="inscription à l'ordre du jour",
                         columns=(spec.column,))
    return values.get(spec.name) or ""


def _item(meeting: Meeting, item_id: int) -> AgendaItem:
    for item in meeting.items:
        if item.id == item_id:
            return item
    raise InvalidInput("Point inconnu pour cette séance.")


def move_item(session: Session, vault: Vault, meeting: Meeting, item_id: int,
              offset: int) -> None:
    """Move an item up (-1) or down (+1) within the agenda."""
    _require(meeting, "reorder")
    items = sorted(meeting.items, key=lambda i: i.position)
    index = items.index(_item(meeting, item_id))
    other = index + offset
    if 0 <= other < len(items):
        items[index].position, items[other].position = items[other].position, \
            items[index].position
        _agenda_changed(meeting)
        _record(session, vault, "agenda_reordered", meeting)
        session.flush()


def remove_item(session: Session, vault: Vault, meeting: Meeting, item_id: int) -> None:
    """Before the freeze: a removed sheet goes back to the screened ones. An adjourned item
    stays: its sheet has left already, and the PV and fiche retour give why."""
    _require(meeting, "remove_item")
    item = _item(meeting, item_id)
    if item.outcome:
        raise InvalidInput("Ce point a été ajourné : il reste à l'ordre du jour avec le motif "
                           "que donnent le procès-verbal et la fiche retour.")
    if item.sheet is not None:
        sheet_transition(session, vault, item.sheet, "adjourn", actor_id=vault.actor.user_id,
                         reason="Retirée de l'ordre du jour avant convocation.", meeting=meeting)
    meeting.items.remove(item)
    session.delete(item)
    _agenda_changed(meeting)
    _record(session, vault, "item_removed", meeting)
    session.flush()


def adjourn(session: Session, vault: Vault, meeting: Meeting, item_id: int, reason: str,
            target: Meeting | None = None, time_slot: str = "",
            dismissals: dict[str, str] | None = None) -> None:
    """Ajournement: the sheet leaves this session with a reason; it is proposed again next
    time, or inscribed straight away on ``target``."""
    _require(meeting, "adjourn")
    item = _item(meeting, item_id)
    if item.sheet is None or item.outcome:
        raise InvalidInput("Seule une situation non encore examinée peut être ajournée.")
    reason = clean_text(reason, label="Motif de l'ajournement", limit=500, required=True,
                        multiline=True)
    dismissals = dismissals or {}
    dismissed = review_sheet_texts(
        session, vault, item.sheet, {"Motif de l'ajournement": reason}, dismissals,
        "Situation non ajournée : le motif figure au procès-verbal et sur la fiche retour, "
        "il ne doit désigner personne. Reformulez :")
    if target is not None and (target.id == meeting.id
                               or target.circonscription_id != meeting.circonscription_id):
        raise InvalidInput("Choisissez une autre séance de la même circonscription.")
    sheet_transition(session, vault, item.sheet, "adjourn", actor_id=vault.actor.user_id,
                     reason=reason, meeting=meeting)
    item.outcome, item.adjourn_reason = "ajourne", reason
    meeting.content_version += 1
    audit_dismissals(session, vault, "agenda_items", item.id, dismissed, dismissals)
    _record(session, vault, "sheet_adjourned", meeting, fields=[str(item.sheet_id)])
    if target is not None:
        inscribe_sheet(session, vault, target, item.sheet, time_slot or item.time_slot,
                       part=item.part, icag_kind=item.icag_kind)
    session.flush()


# -- examination ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ActionInput:
    label: str
    owner_structure_id: int | None
    due_on: date | None


def check_avis_inputs(session: Session, meeting: Meeting, *, avis: str, avis_codes: set[str],
                      motivation: str, actions: list[ActionInput], come_back_on: date | None,
                      formal_decision_by: str) -> tuple[str, list[ActionInput]]:
    """The avis's cleaned motivation and actions, or a French error listing every problem
    (an avis recorded, or corrected)."""
    motivation = clean_text(motivation, label="Motivation", limit=MOTIVATION_LIMIT,
                            multiline=True)
    actions = [ActionInput(clean_text(a.label, label="Action", limit=ACTION_LIMIT),
                           a.owner_structure_id, a.due_on) for a in actions]
    problems = []
    if avis not in avis_codes:
        problems.append("choisissez un avis")
    if formal_decision_by not in FORMAL_DECISION:
        problems.append("décision formelle : choix invalide")
    if come_back_on is not None and come_back_on <= meeting.day:
        problems.append("la date de retour en instance doit suivre la séance")
    for action in actions:
        if not action.label:
            problems.append("chaque action a un intitulé")
        if action.due_on is not None and action.due_on < meeting.day:
            problems.append("l'échéance d'une action ne peut précéder la séance")
        if action.owner_structure_id and session.get(Structure,
                                                     action.owner_structure_id) is None:
            problems.append("structure porteuse inconnue")
    if problems:
        raise InvalidInput("Avis non enregistré : " + " ; ".join(dict.fromkeys(problems)) + ".")
    return motivation, actions


def review_sheet_texts(session: Session, vault: Vault, sheet: Sheet, texts: dict[str, str],
                       dismissals: dict[str, str], intro: str) -> list[SessionFinding]:
    """Texts about one situation that reach the PV and the fiche retour: the dismissed
    findings, or ``TextsNeedReviewError`` (the person's own identity is never dismissable)."""
    if not any(texts.values()):
        return []
    # The identity is decrypted (an audited read) only when there is text to check.
    try:
        return review_session_texts(
            session, texts, person_identities(session, vault, sheet.beneficiary, GUARD_PURPOSE),
            dismissals, intro)
    except TextsNeedReviewError as refused:
        # The page shows which typed words are the person's: repeated refusals are how one
        # would probe an identity, so each one stays in the audit log for the DPO.
        own = sorted({f.kind for review in refused.reviews for f in review["findings"]
                      if f.own_identity})
        if own:
            audit.record_after(session, vault.keyring, vault.actor, "identity_guard_refused",
                               object_type="sheets", object_ids=[sheet.id], fields=own)
        raise


def avis_texts(motivation: str, actions: list[ActionInput]) -> dict[str, str]:
    """An avis's free texts, labelled as the review page shows them."""
    return {"Motivation": motivation} | {f"Action {number}": action.label
                                         for number, action in enumerate(actions, 1)}


AVIS_REVIEW_INTRO = ("ces textes iront au procès-verbal et à la fiche retour, qui désignent "
                     "la personne par sa seule référence. Reformulez ; un élément qui ne "
                     "désigne ni la personne ni un tiers peut être écarté avec un motif :")


def record_avis(session: Session, vault: Vault, meeting: Meeting, item_id: int, *, avis: str,
                avis_codes: set[str], motivation: str, actions: list[ActionInput],
                come_back_on: date | None, formal_decision_by: str,
                dismissals: dict[str, str] | None = None) -> Decision:
    """The instance's avis on one situation, with its préconisations.

    Texts that look identifying are refused: the person's own identity always, another
    finding until the facilitator dismisses it with a reason (``dismissals``: finding key
    -> reason, audited as counts)."""
    _require(meeting, "record_avis")
    item = _item(meeting, item_id)
    if item.sheet is None or item.outcome:
        raise InvalidInput("Cette situation a déjà un avis ou a été ajournée.")
    motivation, actions = check_avis_inputs(
        session, meeting, avis=avis, avis_codes=avis_codes, motivation=motivation,
        actions=actions, come_back_on=come_back_on, formal_decision_by=formal_decision_by)
    sheet = item.sheet
    dismissals = dismissals or {}
    dismissed = review_sheet_texts(session, vault, sheet, avis_texts(motivation, actions),
                                   dismissals, "Avis non enregistré : " + AVIS_REVIEW_INTRO)
    sheet_transition(session, vault, sheet, "examine", actor_id=vault.actor.user_id)
    decision = Decision(meeting_id=meeting.id, sheet=sheet, avis=avis,
                        formal_decision_by=formal_decision_by, come_back_on=come_back_on)
    session.add(decision)
    session.flush()
    vault.seal(decision, "motivation", motivation)
    for action in actions:
        row = DecisionAction(decision=decision, owner_structure_id=action.owner_structure_id,
                             due_on=action.due_on)
        session.add(row)
        session.flush()
        vault.seal(row, "label", action.label)
    sheet_transition(session, vault, sheet, "record_avis", actor_id=vault.actor.user_id)
    audit_dismissals(session, vault, "decisions", decision.id, dismissed, dismissals)
    item.outcome = "examine"
    _record(session, vault, "avis_recorded", meeting, fields=[str(sheet.id)])
    session.flush()
    return decision


def mark_action_done(session: Session, vault: Vault, action: DecisionAction,
                     today: date | None = None) -> None:
    if action.done_on is not None:
        raise InvalidTransition("Cette préconisation est déjà réalisée.")
    action.done_on = today or date.today()
    audit.record(session, vault.keyring, vault.actor, "action_done",
                 object_type="decision_actions", object_ids=[action.id])
    session.flush()


# -- follow-up ------------------------------------------------------------------------------
def open_actions(session: Session, circonscription_ids: set[int]) -> list[DecisionAction]:
    """Préconisations not done yet, by due date (the annex of the next dossier too)."""
    return list(session.scalars(
        select(DecisionAction).join(Decision).join(Sheet, Decision.sheet_id == Sheet.id)
        .where(Sheet.circonscription_id.in_(circonscription_ids or {-1}),
               DecisionAction.done_on.is_(None))
        .order_by(DecisionAction.due_on.is_(None), DecisionAction.due_on)))


def situations_to_bring_back(session: Session, circonscription_ids: set[int],
                             horizon: date) -> list[Decision]:
    """The latest avis of situations in suivi (or being updated for their return) whose
    return date falls before ``horizon``: an earlier passage's date no longer counts, a
    purged person's situation does not come back."""
    return list(session.scalars(
        select(Decision).join(Sheet, Decision.sheet_id == Sheet.id)
        .join(Beneficiary, Beneficiary.id == Sheet.beneficiary_id)
        .where(Sheet.circonscription_id.in_(circonscription_ids or {-1}),
               Sheet.status.in_(returns.RETURNING_STATES), Decision.come_back_on.is_not(None),
               Decision.come_back_on <= horizon, Decision.id.in_(returns.latest_decision_ids()),
               Beneficiary.purged_at.is_(None))
        .order_by(Decision.come_back_on)))


def previous_passages(session: Session, sheet: Sheet) -> list[AgendaItem]:
    """Every time the situation was on an agenda (returned situations keep their history)."""
    return list(session.scalars(
        select(AgendaItem).join(Meeting).where(AgendaItem.sheet_id == sheet.id)
        .order_by(Meeting.starts_at)))
