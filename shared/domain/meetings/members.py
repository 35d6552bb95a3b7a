"""Members of the instance: invitations, answers, attendance."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.domain import audit, documents, notifications
from shared.domain.meetings.states import audit_meeting, require_allowed
from shared.domain.users import EMAIL_RE, normalise_email
from shared.encrypted import Vault
from shared.errors import InvalidInputError
from shared.models import (
    Circonscription,
    Meeting,
    MeetingMember,
    Member,
    RoleAssignment,
    Structure,
    User,
)
from shared.models.meeting import ANSWERS, ATTENDANCE
from shared.text import clean_text, has_control


def save_member(session: Session, member: Member | None, *, circonscription_id: int,
                structure_id: int | None, name: str, function: str, kind: str, acco_glo: bool,
                active: bool, email: str = "") -> Member:
    name = clean_text(name, label="Nom", limit=160, required=True)
    function = clean_text(function, label="Fonction", limit=160)
    email = normalise_email(email)
    if email and (not EMAIL_RE.match(email) or len(email) > 254 or has_control(email)):
        raise InvalidInputError("Adresse e-mail invalide.")
    if kind not in ("permanent", "invite"):
        raise InvalidInputError("Statut inconnu.")
    if structure_id and session.get(Structure, structure_id) is None:
        raise InvalidInputError("Structure inconnue.")
    if member is None:
        member = Member(circonscription_id=circonscription_id)
        session.add(member)
    member.structure_id, member.name, member.function = structure_id, name, function
    member.kind, member.acco_glo, member.active = kind, acco_glo, active
    member.email = email
    session.flush()
    return member


def add_member(session: Session, vault: Vault, circonscription: Circonscription, *,
               structure_id: int | None, name: str, function: str, kind: str,
               acco_glo: bool, email: str = "") -> Member:
    """A facilitator adds a member to the instance (active), audited (``member_saved``)."""
    member = save_member(session, None, circonscription_id=circonscription.id,
                         structure_id=structure_id, name=name, function=function, kind=kind,
                         acco_glo=acco_glo, active=True, email=email)
    _audit_member(session, vault, member)
    return member


def set_member_active(session: Session, vault: Vault, member: Member, active: bool) -> None:
    """A member leaves the instance (no longer invited) or comes back; audited."""
    member.active = active
    session.flush()
    _audit_member(session, vault, member)


def set_substitute(session: Session, vault: Vault, member: Member,
                   substitute: Member | None) -> None:
    """Name the member's suppléant·e (another member of the same instance), or none;
    audited (``member_saved``)."""
    if substitute is not None and (substitute.id == member.id
                                   or substitute.circonscription_id
                                   != member.circonscription_id):
        raise InvalidInputError("Le ou la suppléant·e doit être un autre membre de la même "
                                "instance.")
    member.substitute_id = substitute.id if substitute is not None else None
    session.flush()
    _audit_member(session, vault, member)


def invite_substitutes(session: Session, vault: Vault, meeting: Meeting) -> list[Member]:
    """The active suppléant·e of each member who declined is invited in their place; once
    the session is convoked, they receive the convocation (the frozen agenda attached, the
    others are not sent again). Returns the members invited."""
    invited = {row.member_id for row in meeting.members}
    added = []
    for row in list(meeting.members):
        substitute = row.member.substitute
        if (row.answer == "decline" and substitute is not None and substitute.active
                and substitute.id not in invited):
            session.add(MeetingMember(meeting=meeting, member_id=substitute.id))
            invited.add(substitute.id)
            added.append(substitute)
    session.flush()
    if added and meeting.state == "convoquee":
        agenda = documents.request_document(session, meeting, "agenda", vault.actor.user_id)
        notifications.convoke(session, meeting, agenda)
    return added


def _audit_member(session: Session, vault: Vault, member: Member) -> None:
    audit.record(session, vault.keyring, vault.actor, "member_saved", object_type="members",
                 object_ids=[member.id])


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
    require_allowed(meeting, "record_answers")
    _set_each(meeting, answers, "answer", ANSWERS)
    invite_substitutes(session, vault, meeting)
    audit_meeting(session, vault, "answers", meeting)


def record_attendance(session: Session, vault: Vault, meeting: Meeting,
                      attendance: dict[int, tuple[str, str]], today: date | None = None) -> None:
    """Attendance, on or after the session day only."""
    require_allowed(meeting, "record_attendance", today)
    _set_each(meeting, attendance, "attendance", ATTENDANCE, allow_empty=True)
    audit_meeting(session, vault, "attendance", meeting)


def _set_each(meeting: Meeting, entries: dict[int, tuple[str, str]], attribute: str,
              allowed: dict[str, str], allow_empty: bool = False) -> None:
    by_id = {m.id: m for m in meeting.members}
    for member_id, (value, replacement) in entries.items():
        row = by_id.get(member_id)
        if row is None:
            raise InvalidInputError("Membre inconnu pour cette séance.")
        if value not in allowed and not (allow_empty and value == ""):
            raise InvalidInputError("Réponse invalide.")
        replacement = clean_text(replacement, label="Remplaçant·e", limit=160)
        if value == "remplace" and not replacement:
            raise InvalidInputError(f"Indiquez qui remplace {row.member.name}.")
        setattr(row, attribute, value)
        if value == "remplace" or attribute == "answer":
            row.replacement = replacement if value == "remplace" else ""


def attendance_counts(meeting: Meeting) -> dict[str, int]:
    counts = {key: 0 for key in ATTENDANCE}
    for row in meeting.members:
        if row.attendance in counts:
            counts[row.attendance] += 1
    return counts




def facilitators_of(session: Session, circonscription_id: int) -> list[User]:
    """The active chargé·e·s d'animation (CAT) of a circonscription, by name."""
    return list(session.scalars(
        select(User).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role == "facilitator",
               RoleAssignment.circonscription_id == circonscription_id, User.active.is_(True))
        .distinct().order_by(User.full_name)))


def secretary_choices(session: Session, meeting: Meeting) -> list[tuple[str, str]]:
    """Who may be secrétaire de séance: the circonscription's CAT, then the members present
    (a replaced member's substitute is not a member of the instance). Values are
    ``user:<id>`` and ``member:<id>``."""
    return ([(f"user:{user.id}", f"{user.full_name} (chargé·e d'animation territoriale)")
             for user in facilitators_of(session, meeting.circonscription_id)]
            + [(f"member:{row.member_id}", member_label(row.member))
               for row in meeting.members if row.attendance == "present"])


def member_label(member: Member) -> str:
    """« Nom (fonction, structure) » without empty parts."""
    detail = ", ".join(part for part in (member.function,
                                         member.structure.name if member.structure else "")
                       if part)
    return f"{member.name} ({detail})" if detail else member.name


def set_secretary(session: Session, meeting: Meeting, choice: str) -> None:
    """Record the secrétaire de séance (one of ``secretary_choices``), or refuse."""
    if choice not in dict(secretary_choices(session, meeting)):
        raise InvalidInputError("Choisissez le ou la secrétaire de séance parmi les membres "
                                "présents et les chargé·e·s d'animation.")
    kind, _sep, number = choice.partition(":")
    meeting.secretary_member_id = int(number) if kind == "member" else None
    meeting.secretary_user_id = int(number) if kind == "user" else None


def secretary_label(session: Session, meeting: Meeting) -> str:
    """The secrétaire de séance as the minutes name them ("" when none was chosen)."""
    if meeting.secretary_user_id is not None:
        user = session.get(User, meeting.secretary_user_id)
        return f"{user.full_name}, chargé·e d'animation territoriale" if user else ""
    if meeting.secretary_member_id is not None:
        member = session.get(Member, meeting.secretary_member_id)
        return member_label(member) if member else ""
    return ""
