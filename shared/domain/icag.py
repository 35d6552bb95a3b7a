"""Accompagnement global (ICAG): entries, renewals and exits recorded at a session, the
12-month term and its renewal reminder.

The rules of the national protocol (docs/domain.md): entry needs a diagnostic partagé and
« ne pourra se faire contre l'avis » of the person; AG lasts up to 12 months, renewable.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.domain import audit, notifications
from shared.domain.reference import reference_labels
from shared.domain.sheets import read_values
from shared.encrypted import Vault
from shared.errors import DomainError, InvalidInputError, InvalidTransitionError
from shared.models import AgendaItem, GlobalSupport, GlobalSupportStep, Meeting, Sheet, Structure
from shared.models.icag import EXIT_REASONS
from shared.models.meeting import ICAG_KINDS
from shared.protected import SITUATIONAL
from shared.sheet_schema import COLUMN_OF_CLASS

TERM = relativedelta(months=12)
REMINDER_BEFORE = relativedelta(months=2)
# Steps are recorded once the session is held, until the minutes are written.
RECORD_STATES = {"tenue", "avis_saisis"}
# A start or exit date this far from the session is a typo, not a decision of the instance.
DATE_SPAN = timedelta(days=183)
POSITION_PURPOSE = "accompagnement global : position de la personne"
DIAGNOSTIC_PURPOSE = "accompagnement global : diagnostic partagé"


class PersonDisagreesError(DomainError):
    """The person is « en désaccord »: accompagnement global cannot be imposed on them."""


def term_end(start: date) -> date:
    """Last day of a 12-month term starting on ``start``."""
    return start + TERM - timedelta(days=1)


def running_support(session: Session, beneficiary_id: int) -> GlobalSupport | None:
    """The person's accompagnement global in progress, if any."""
    return session.scalar(select(GlobalSupport).where(
        GlobalSupport.beneficiary_id == beneficiary_id, GlobalSupport.ended_on.is_(None)))


def step_of(session: Session, item: AgendaItem) -> GlobalSupportStep | None:
    return session.scalar(select(GlobalSupportStep).where(
        GlobalSupportStep.agenda_item_id == item.id))


def _icag_item(session: Session, meeting: Meeting, item_id: int, kind: str) -> AgendaItem:
    if meeting.state not in RECORD_STATES:
        raise InvalidTransitionError("Les entrées, renouvellements et sorties d'accompagnement "
                                     "global se saisissent une fois la séance tenue, avant la "
                                     "rédaction du procès-verbal.")
    item = next((i for i in meeting.items if i.id == item_id), None)
    if item is None or item.part != "icag" or item.sheet is None:
        raise InvalidInputError("Point ICAG inconnu pour cette séance.")
    if item.icag_kind != kind:
        raise InvalidInputError(
            f"Ce point est inscrit comme « {ICAG_KINDS.get(item.icag_kind, '')} »"
            f", pas comme « {ICAG_KINDS[kind]} ».")
    if item.outcome == "ajourne":
        raise InvalidInputError("Ce point a été ajourné : rien n'est enregistré à cette séance.")
    if step_of(session, item) is not None:
        raise InvalidInputError("Cette étape de l'accompagnement global est déjà enregistrée.")
    return item


def _refuse_if_disagreeing(vault: Vault, sheet: Sheet) -> None:
    values = read_values(vault, sheet, purpose=POSITION_PURPOSE,
                         columns=(COLUMN_OF_CLASS[SITUATIONAL],))
    if values.get("position_personne") == "desaccord":
        raise PersonDisagreesError(
            f"Accompagnement global refusé : la fiche {sheet.reference} indique que la "
            "personne est « en désaccord ». L'accompagnement global ne peut se faire contre "
            "son avis : recueillez à nouveau sa position et mettez la fiche à jour.")


def _check_date(value: date | None, label: str, meeting: Meeting) -> date:
    if value is None:
        raise InvalidInputError(f"{label} : indiquez une date.")
    if abs(value - meeting.day) > DATE_SPAN:
        raise InvalidInputError(f"{label} : la date doit être à moins de six mois de la séance.")
    return value


def _step(session: Session, vault: Vault, support: GlobalSupport, item: AgendaItem,
          on_date: date) -> None:
    session.add(GlobalSupportStep(support=support, agenda_item_id=item.id, kind=item.icag_kind,
                                  on_date=on_date, term_ends_on=support.term_ends_on,
                                  exit_reason=support.exit_reason))
    item.meeting.content_version += 1  # the minutes' ICAG section changes
    session.flush()
    audit.record(session, vault.keyring, vault.actor, f"icag_{item.icag_kind}",
                 object_type="global_supports", object_ids=[support.id])


def record_entry(session: Session, vault: Vault, meeting: Meeting, item_id: int, *,
                 started_on: date | None, diagnostic_on: date | None,
                 diagnostic_structure_id: int | None, categories: list[str],
                 today: date | None = None) -> GlobalSupport:
    """Entry into accompagnement global for the situation of an ICAG « entrée » item: start
    date, 12-month term, and the diagnostic partagé (date, structure, freins found)."""
    today = today or date.today()
    item = _icag_item(session, meeting, item_id, "entree")
    sheet = item.sheet
    _refuse_if_disagreeing(vault, sheet)
    started_on = _check_date(started_on, "Début de l'accompagnement global", meeting)
    if diagnostic_on is None:
        raise InvalidInputError("Diagnostic partagé : indiquez sa date.")
    if diagnostic_on > today or diagnostic_on > started_on:
        raise InvalidInputError("Le diagnostic partagé précède l'entrée : sa date ne peut suivre "
                                "ni aujourd'hui ni le début de l'accompagnement.")
    if not diagnostic_structure_id or session.get(Structure, diagnostic_structure_id) is None:
        raise InvalidInputError("Diagnostic partagé : choisissez la structure qui l'a mené.")
    known = reference_labels(session)["frein"]
    categories = list(dict.fromkeys(categories))
    if not categories or set(categories) - set(known):
        raise InvalidInputError("Diagnostic partagé : cochez au moins une catégorie de frein "
                                "identifiée.")
    if running_support(session, sheet.beneficiary_id) is not None:
        raise InvalidInputError("Un accompagnement global est déjà en cours pour cette personne : "
                                "inscrivez un renouvellement ou une sortie.")
    support = GlobalSupport(beneficiary_id=sheet.beneficiary_id, sheet=sheet,
                            circonscription_id=sheet.circonscription_id, started_on=started_on,
                            term_ends_on=term_end(started_on), diagnostic_on=diagnostic_on,
                            diagnostic_structure_id=diagnostic_structure_id, exit_reason="")
    session.add(support)
    session.flush()
    vault.seal(support, "diagnostic_categories", json.dumps(categories))
    _step(session, vault, support, item, started_on)
    return support


def _running_for(session: Session, item: AgendaItem) -> GlobalSupport:
    support = running_support(session, item.sheet.beneficiary_id)
    if support is None:
        raise InvalidInputError("Aucun accompagnement global en cours pour cette personne : "
                                "enregistrez d'abord son entrée.")
    return support


def record_renewal(session: Session, vault: Vault, meeting: Meeting,
                   item_id: int) -> GlobalSupport:
    """Renewal of the running accompagnement global: the term moves 12 months on."""
    item = _icag_item(session, meeting, item_id, "renouvellement")
    support = _running_for(session, item)
    _refuse_if_disagreeing(vault, item.sheet)  # staying in AG needs the person's agreement too
    support.term_ends_on = support.term_ends_on + TERM
    _step(session, vault, support, item, meeting.day)
    return support


def record_exit(session: Session, vault: Vault, meeting: Meeting, item_id: int, *,
                ended_on: date | None, reason: str) -> GlobalSupport:
    """Exit from the running accompagnement global, with its reason."""
    item = _icag_item(session, meeting, item_id, "sortie")
    support = _running_for(session, item)
    ended_on = _check_date(ended_on, "Fin de l'accompagnement global", meeting)
    if ended_on < support.started_on:
        raise InvalidInputError("La fin de l'accompagnement global ne peut précéder son début.")
    if reason not in EXIT_REASONS:
        raise InvalidInputError("Indiquez le motif de sortie de l'accompagnement global.")
    support.ended_on, support.exit_reason = ended_on, reason
    _step(session, vault, support, item, ended_on)
    return support


def diagnostic_categories(vault: Vault, support: GlobalSupport) -> list[str]:
    """The freins codes of the diagnostic partagé (an audited, sensitive read)."""
    secret = vault.open(support, "diagnostic_categories", purpose=DIAGNOSTIC_PURPOSE)
    return json.loads(secret.reveal()) if secret is not None else []


def steps_of_meeting(session: Session, meeting: Meeting) -> dict[int, GlobalSupportStep]:
    """Agenda item id -> the ICAG step it recorded."""
    return {step.agenda_item_id: step for step in session.scalars(
        select(GlobalSupportStep).join(AgendaItem)
        .where(AgendaItem.meeting_id == meeting.id))}


def terms_ending(session: Session, circonscription_ids: set[int],
                 today: date | None = None) -> list[GlobalSupport]:
    """Running accompagnements global whose term ends within REMINDER_BEFORE (or is past)."""
    today = today or date.today()
    return list(session.scalars(
        select(GlobalSupport).where(
            GlobalSupport.circonscription_id.in_(circonscription_ids or {-1}),
            GlobalSupport.ended_on.is_(None),
            GlobalSupport.term_ends_on <= today + REMINDER_BEFORE)
        .order_by(GlobalSupport.term_ends_on)))


def remind_terms(session: Session, today: date | None = None) -> int:
    """Two months before a term ends, tell the referent and the ACCO GLO counsellor(s) of the
    circonscription, once per term. Returns how many messages were written."""
    today = today or date.today()
    written = 0
    for support in session.scalars(select(GlobalSupport).where(
            GlobalSupport.ended_on.is_(None),
            GlobalSupport.term_ends_on <= today + REMINDER_BEFORE,
            GlobalSupport.term_ends_on >= today)):
        written += notifications.global_support_term(session, support)
    return written
