"""Formal decisions at the second level: an avis that needs the Département's or France
Travail's decision waits « en attente » until that decision is recorded (« prise »): what
was decided, when, by whom. The situation's fiche retour is then built again with it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.domain import audit, documents
from shared.domain.meetings import review_sheet_texts
from shared.domain.screening import audit_dismissals
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError
from shared.models import Decision, FormalDecision, Meeting, Sheet
from shared.models.meeting import FORMAL_OUTCOMES
from shared.text import clean_text

AUTHOR_LIMIT = 160
DETAIL_LIMIT = 1000


def pending(session: Session, *, circonscription_ids: set[int] | None = None,
            institutions: set[str] | None = None) -> list[Decision]:
    """Avis still waiting for their formal decision, oldest session first; limited to the
    facilitator's circonscriptions or to the director's institutions."""
    query = (select(Decision).join(Meeting, Decision.meeting_id == Meeting.id)
             .outerjoin(FormalDecision, FormalDecision.decision_id == Decision.id)
             .where(Decision.formal_decision_by != "", FormalDecision.id.is_(None))
             .order_by(Meeting.starts_at, Decision.id))
    if circonscription_ids is not None:
        query = query.join(Sheet, Decision.sheet_id == Sheet.id).where(
            Sheet.circonscription_id.in_(circonscription_ids or {-1}))
    if institutions is not None:
        query = query.where(Decision.formal_decision_by.in_(institutions or {""}))
    return list(session.scalars(query))


def record(session: Session, vault: Vault, decision: Decision, *, outcome: str,
           decided_on: date | None, author: str, detail: str, actor_id: int | None,
           today: date | None = None,
           dismissals: dict[str, str] | None = None) -> FormalDecision:
    """Record the decision taken on ``decision`` (once), then rebuild its fiche retour. Its
    texts are screened as every session text (``dismissals``: finding key -> reason)."""
    today = today or date.today()
    if not decision.formal_decision_by:
        raise InvalidTransitionError(
            "Cet avis est définitif : il n'attend pas de décision formelle.")
    if decision.formal is not None:
        raise InvalidTransitionError("La décision formelle est déjà enregistrée pour cet avis.")
    author = clean_text(author, label="Auteur de la décision", limit=AUTHOR_LIMIT)
    detail = clean_text(detail, label="Précisions", limit=DETAIL_LIMIT, multiline=True)
    problems = []
    if outcome not in FORMAL_OUTCOMES:
        problems.append("choisissez la décision prise")
    if decided_on is None:
        problems.append("indiquez la date de la décision")
    elif not decision.meeting.day <= decided_on <= today:
        problems.append("la date de la décision suit la séance et ne peut être future")
    if not author:
        problems.append("indiquez qui a pris la décision (fonction, délégation)")
    if outcome == "modifiee" and not detail:
        problems.append("précisez en quoi la décision diffère de l'avis")
    if problems:
        raise InvalidInputError("Décision non enregistrée : " + " ; ".join(problems) + ".")
    dismissals = dismissals or {}
    dismissed = review_sheet_texts(
        session, vault, decision.sheet, {"Auteur de la décision": author, "Précisions": detail},
        dismissals, "Décision non enregistrée : ces textes iront sur la fiche retour, qui "
        "désigne la personne par sa seule référence. Reformulez ; un élément qui ne désigne "
        "personne (une fonction, un service) peut être écarté avec un motif :")
    formal = FormalDecision(decision=decision, outcome=outcome, decided_on=decided_on,
                            author=author, recorded_by=actor_id)
    session.add(formal)
    session.flush()
    vault.seal(formal, "detail", detail or None)
    audit.record(session, vault.keyring, vault.actor, "formal_decision_recorded",
                 object_type="decisions", object_ids=[decision.id],
                 fields=[decision.formal_decision_by, outcome])
    audit_dismissals(session, vault, "decisions", decision.id, dismissed, dismissals)
    meeting = decision.meeting
    if meeting.state in documents.KIND_STATES["feedback"]:
        documents.request_document(session, meeting, "feedback", actor_id, decision.sheet,
                                   rebuild=True)
    session.flush()
    return formal
