"""La fiche retour: one situation for its referent, by reference and pseudonym."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from generator.contexts.common import decisions_of
from generator.contexts.formatting import clean, french_date, french_time, short_date
from generator.contexts.minutes import decision_texts, outcome_of
from shared.domain.meetings import facilitators_of
from shared.domain.reference import reference_labels
from shared.encrypted import Vault
from shared.models import AgendaItem, Decision, Meeting, Sheet
from shared.models.meeting import FORMAL_DECISION, FORMAL_OUTCOMES


def _next_passage(session: Session, meeting: Meeting, sheet: Sheet,
                  decision: Decision | None, adjourned: bool) -> str:
    later = session.scalar(
        select(Meeting.starts_at).join(AgendaItem, AgendaItem.meeting_id == Meeting.id)
        .where(AgendaItem.sheet_id == sheet.id, Meeting.starts_at > meeting.starts_at,
               Meeting.state.not_in(("annulee", "reportee")))
        .order_by(Meeting.starts_at).limit(1))
    if later is not None:
        return f"{french_date(later.date())} à {french_time(later)}, séance programmée"
    if decision is not None and decision.come_back_on:
        return f"à partir du {short_date(decision.come_back_on)}, séance à fixer"
    if adjourned:  # proposed again to the next session of the circonscription
        return "à la prochaine séance de l'instance, date à fixer"
    return ""


def _contact(session: Session, meeting: Meeting) -> str:
    """The CAT of the circonscription by name, with their professional e-mail address."""
    where = f"chargé·e d'animation territoriale de l'ICL-I, circonscription de " \
            f"{meeting.circonscription.name}"
    people = [f"{user.full_name}, {where} – {user.email}" if user.email
              else f"{user.full_name}, {where}"
              for user in facilitators_of(session, meeting.circonscription_id)]
    return clean(" ; ".join(people) or where[:1].upper() + where[1:])


def _formal_decision_text(vault: Vault, decision: Decision) -> str:
    """The decision taken at the second level, as the fiche retour states it."""
    formal = decision.formal
    detail = vault.open(formal, "detail")
    text = (f"{FORMAL_DECISION.get(decision.formal_decision_by, '')} – décision prise le "
            f"{short_date(formal.decided_on)} par {formal.author} : "
            f"{FORMAL_OUTCOMES.get(formal.outcome, formal.outcome)}")
    return clean(f"{text}. {detail.reveal()}" if detail is not None else text)


def feedback_context(session: Session, vault: Vault, meeting: Meeting, version: int,
                     today: date, sheet: Sheet | None = None) -> dict:
    """One situation for its referent, by reference and pseudonym: the identity stays with
    the referent (this process never holds the identity chain)."""
    if sheet is None:
        raise ValueError("the fiche retour is built for one sheet")
    item = next((i for i in meeting.items if i.sheet_id == sheet.id), None)
    if item is None:
        raise ValueError("this sheet is not on the session's agenda")
    labels = reference_labels(session)
    decision = decisions_of(session, {(meeting.id, sheet.id)}).get((meeting.id, sheet.id))
    motivations, action_labels = decision_texts(vault, [decision] if decision else [])
    outcome = outcome_of(item, decision, labels, motivations, action_labels)
    next_passage = _next_passage(session, meeting, sheet, decision, outcome["adjourned"])
    if outcome["adjourned"]:
        avis = "Situation ajournée"
        motivation = outcome["adjourn_reason"]
    else:
        avis = outcome["avis"] or "Avis non encore rendu"
        motivation = outcome["motivation"]
    information = ["Informer la personne de l'avis rendu par l'instance et de sa motivation."]
    if outcome["adjourned"]:
        information.append("Lui indiquer que l'examen de sa situation est reporté à une "
                           "prochaine séance.")
    if outcome["actions"]:
        information.append("Convenir avec elle de la mise en œuvre des préconisations et de "
                           "leurs échéances.")
    formal_decision = outcome["formal_decision"]
    if decision is not None and decision.formal_decision_by:
        who = {"departement": "du Département", "france_travail": "de France Travail"}.get(
            decision.formal_decision_by, "de l'institution compétente")
        if decision.formal is None:
            formal_decision = f"{formal_decision} – en attente"
            information.append(f"Lui préciser que cet avis doit encore faire l'objet d'une "
                               f"décision formelle {who}, qui lui sera notifiée.")
        else:
            formal_decision = _formal_decision_text(vault, decision)
            information.append(f"Lui notifier la décision formelle {who} et ses motifs.")
    if next_passage:
        information.append(f"Lui indiquer que sa situation sera de nouveau examinée "
                           f"{next_passage}.")
    information.append("Recueillir ses observations et en faire part à l'animation de "
                       "l'instance si nécessaire.")
    circonscription = clean(meeting.circonscription.name)
    return {
        "circonscription": circonscription,
        "meeting_date": french_date(meeting.starts_at.date()),
        "version": str(version),
        "generated_on": french_date(today),
        "reference": clean(sheet.reference),
        "pseudonym": clean(sheet.beneficiary.pseudonym),
        "structure": outcome["structure"],
        "motif": outcome["motif"],
        "avis": avis,
        "adjourned": outcome["adjourned"],  # the motivation is then the adjournment's reason
        "motivation": motivation,
        "actions": outcome["actions"],
        "next_passage": next_passage,
        "formal_decision": formal_decision,
        "information": information,
        "contact": _contact(session, meeting),
    }

