"""The agenda: situations and partnership items inscribed, reordered, removed, adjourned."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.domain.meetings.guard import review_sheet_texts
from shared.domain.meetings.members import invite_members
from shared.domain.meetings.states import (
    LATE_ADDITION,
    PRESENTER_LIMIT,
    TEXT_LIMIT,
    TIME_RE,
    audit_meeting,
    require_allowed,
)
from shared.domain.screening import audit_dismissals, review_session_texts
from shared.domain.sheet_workflow import transition as sheet_transition
from shared.domain.sheets import read_values
from shared.encrypted import Vault
from shared.errors import InvalidInputError
from shared.models import AgendaItem, Beneficiary, Meeting, Sheet
from shared.models.meeting import ICAG_KINDS
from shared.sheet_schema import FIELDS_BY_NAME
from shared.text import clean_text


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
    require_allowed(meeting, "add_item")
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
    item = add_screened_partnership_item(session, vault, meeting, title,
                                 presenter_structure=presenter_structure,
                                 presenter_role=presenter_role, time_slot=time_slot,
                                 duration_minutes=duration_minutes)
    audit_dismissals(session, vault, "agenda_items", item.id, dismissed, dismissals)
    return item


def add_screened_partnership_item(session: Session, vault: Vault, meeting: Meeting, title: str, *,
                          presenter_structure: str, presenter_role: str, time_slot: str,
                          duration_minutes: int) -> AgendaItem:
    if time_slot and not TIME_RE.match(time_slot):
        raise InvalidInputError("Créneau invalide : une heure de 00:00 à 23:59.")
    if not 5 <= duration_minutes <= 240:
        raise InvalidInputError("Durée entre 5 et 240 minutes.")
    item = AgendaItem(meeting=meeting, part="partenariat", title=title,
                      presenter_structure=presenter_structure, presenter_role=presenter_role,
                      time_slot=time_slot, duration_minutes=duration_minutes,
                      position=_next_position(session, meeting))
    session.add(item)
    _agenda_changed(meeting, item)
    audit_meeting(session, vault, "item_added", meeting)
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


class SamePersonOnAgendaError(InvalidInputError):
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
    require_allowed(meeting, "inscribe")
    if part not in ("situation", "icag"):
        raise InvalidInputError("Partie de l'ordre du jour inconnue.")
    if part == "icag" and icag_kind not in ICAG_KINDS:
        raise InvalidInputError("Précisez s'il s'agit d'une entrée, d'un renouvellement ou "
                                "d'une sortie d'accompagnement global.")
    if not time_slot.strip():
        raise InvalidInputError("Choisissez un créneau.")
    if not TIME_RE.match(time_slot):
        raise InvalidInputError("Créneau invalide : une heure de 00:00 à 23:59.")
    if sheet.circonscription_id != meeting.circonscription_id:
        raise InvalidInputError("La fiche relève d'une autre circonscription.")
    if purged(sheet):
        raise InvalidInputError(f"La fiche {sheet.reference} ne peut plus être inscrite : les "
                                "données de la personne ont été effacées au terme de leur durée "
                                "de conservation.")
    earlier = [i for i in meeting.items if i.sheet_id == sheet.id]
    if any(not i.outcome for i in earlier):
        raise InvalidInputError("La fiche est déjà inscrite à cette séance.")
    if earlier:  # one agenda item per sheet and session
        raise InvalidInputError("La fiche a été ajournée de cette séance ou y a déjà été "
                                "examinée : inscrivez-la à une autre séance.")
    if part == "icag" and icag_kind == "entree" and _position(vault, sheet) == "desaccord":
        raise InvalidInputError("Entrée en accompagnement global impossible : la position "
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
    audit_meeting(session, vault, "sheet_inscribed", meeting, fields=[str(sheet.id)])
    if same_person:
        audit_meeting(session, vault, "same_person_inscribed", meeting,
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


def agenda_item(meeting: Meeting, item_id: int) -> AgendaItem:
    for item in meeting.items:
        if item.id == item_id:
            return item
    raise InvalidInputError("Point inconnu pour cette séance.")


def move_item(session: Session, vault: Vault, meeting: Meeting, item_id: int,
              offset: int) -> None:
    """Move an item up (-1) or down (+1) within the agenda."""
    require_allowed(meeting, "reorder")
    items = sorted(meeting.items, key=lambda i: i.position)
    index = items.index(agenda_item(meeting, item_id))
    other = index + offset
    if 0 <= other < len(items):
        items[index].position, items[other].position = items[other].position, \
            items[index].position
        _agenda_changed(meeting)
        audit_meeting(session, vault, "agenda_reordered", meeting)
        session.flush()


def remove_item(session: Session, vault: Vault, meeting: Meeting, item_id: int) -> None:
    """Before the freeze: a removed sheet goes back to the screened ones. An adjourned item
    stays: its sheet has left already, and the PV and fiche retour give why."""
    require_allowed(meeting, "remove_item")
    item = agenda_item(meeting, item_id)
    if item.outcome:
        raise InvalidInputError("Ce point a été ajourné : il reste à l'ordre du jour avec le motif "
                                "que donnent le procès-verbal et la fiche retour.")
    if item.sheet is not None:
        sheet_transition(session, vault, item.sheet, "adjourn", actor_id=vault.actor.user_id,
                         reason="Retirée de l'ordre du jour avant convocation.", meeting=meeting)
    meeting.items.remove(item)
    session.delete(item)
    _agenda_changed(meeting)
    audit_meeting(session, vault, "item_removed", meeting)
    session.flush()


def adjourn(session: Session, vault: Vault, meeting: Meeting, item_id: int, reason: str,
            target: Meeting | None = None, time_slot: str = "",
            dismissals: dict[str, str] | None = None) -> None:
    """Ajournement: the sheet leaves this session with a reason; it is proposed again next
    time, or inscribed straight away on ``target``."""
    require_allowed(meeting, "adjourn")
    item = agenda_item(meeting, item_id)
    if item.sheet is None or item.outcome:
        raise InvalidInputError("Seule une situation non encore examinée peut être ajournée.")
    reason = clean_text(reason, label="Motif de l'ajournement", limit=500, required=True,
                        multiline=True)
    dismissals = dismissals or {}
    dismissed = review_sheet_texts(
        session, vault, item.sheet, {"Motif de l'ajournement": reason}, dismissals,
        "Situation non ajournée : le motif figure au procès-verbal et sur la fiche retour, "
        "il ne doit désigner personne. Reformulez :")
    if target is not None and (target.id == meeting.id
                               or target.circonscription_id != meeting.circonscription_id):
        raise InvalidInputError("Choisissez une autre séance de la même circonscription.")
    sheet_transition(session, vault, item.sheet, "adjourn", actor_id=vault.actor.user_id,
                     reason=reason, meeting=meeting)
    item.outcome, item.adjourn_reason = "ajourne", reason
    meeting.content_version += 1
    audit_dismissals(session, vault, "agenda_items", item.id, dismissed, dismissals)
    audit_meeting(session, vault, "sheet_adjourned", meeting, fields=[str(item.sheet_id)])
    if target is not None:
        inscribe_sheet(session, vault, target, item.sheet, time_slot or item.time_slot,
                       part=item.part, icag_kind=item.icag_kind)
    session.flush()


