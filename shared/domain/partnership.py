"""Partnership, interconnaissance and territorial-project items after the session: what was
said, what was decided, and the follow-up date the facilitator's dashboard tracks."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.domain import audit
from shared.domain.screening import audit_dismissals, review_session_texts
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError
from shared.models import AgendaItem, Meeting
from shared.text import clean_text

SUMMARY_LIMIT = 2000
NEXT_STEP_LIMIT = 1000
# Written once the session is held, until the minutes are written (they print it).
OUTCOME_STATES = {"tenue", "avis_saisis"}
CANCELLED = ("annulee", "reportee")


def _partnership_item(meeting: Meeting, item_id: int) -> AgendaItem:
    item = next((i for i in meeting.items if i.id == item_id), None)
    if item is None or item.part != "partenariat":
        raise InvalidInputError("Point partenarial inconnu pour cette séance.")
    return item


def record_outcome(session: Session, vault: Vault, meeting: Meeting, item_id: int, *,
                   summary: str, next_step: str, follow_up_on: date | None,
                   dismissals: dict[str, str] | None = None) -> AgendaItem:
    """The summary of a partnership item, its decision or next step, and an optional
    follow-up date (after the session). May be corrected until the minutes are written.
    Texts are screened as every session text (``dismissals``: finding key -> reason)."""
    if meeting.state not in OUTCOME_STATES:
        raise InvalidTransitionError("Le compte rendu des points partenariaux se saisit une fois "
                                     "la séance tenue, avant la rédaction du procès-verbal.")
    item = _partnership_item(meeting, item_id)
    summary = clean_text(summary, label="Synthèse", limit=SUMMARY_LIMIT, required=True,
                         multiline=True)
    next_step = clean_text(next_step, label="Décision ou suite à donner", limit=NEXT_STEP_LIMIT,
                           required=True, multiline=True)
    if follow_up_on is not None and follow_up_on <= meeting.day:
        raise InvalidInputError("La date de suivi doit suivre la séance.")
    dismissals = dismissals or {}
    dismissed = review_session_texts(
        session, {"Synthèse": summary, "Décision ou suite": next_step}, (), dismissals,
        "Compte rendu non enregistré : ces textes figurent au procès-verbal, ils ne doivent "
        "désigner personne. Reformulez ; un élément qui ne désigne personne peut être écarté "
        "avec un motif :")
    item.summary, item.next_step, item.follow_up_on = summary, next_step, follow_up_on
    item.follow_up_done_on = None
    meeting.content_version += 1  # the minutes change
    audit.record(session, vault.keyring, vault.actor, "meeting_partnership_recorded",
                 object_type="agenda_items", object_ids=[item.id])
    audit_dismissals(session, vault, "agenda_items", item.id, dismissed, dismissals)
    session.flush()
    return item


def follow_ups(session: Session, circonscription_ids: set[int]) -> list[AgendaItem]:
    """Partnership items with a follow-up date not done yet, by date."""
    return list(session.scalars(
        select(AgendaItem).join(Meeting)
        .where(Meeting.circonscription_id.in_(circonscription_ids or {-1}),
               Meeting.state.not_in(CANCELLED), AgendaItem.part == "partenariat",
               AgendaItem.follow_up_on.is_not(None), AgendaItem.follow_up_done_on.is_(None))
        .order_by(AgendaItem.follow_up_on)))


def mark_follow_up_done(session: Session, vault: Vault, item: AgendaItem,
                        today: date | None = None) -> None:
    """The follow-up of a partnership item was done: it leaves the dashboard."""
    if item.part != "partenariat" or item.follow_up_on is None:
        raise InvalidInputError("Ce point n'a pas de suivi prévu.")
    if item.follow_up_done_on is not None:
        raise InvalidTransitionError("Ce suivi est déjà marqué fait.")
    item.follow_up_done_on = today or date.today()
    audit.record(session, vault.keyring, vault.actor, "partnership_follow_up_done",
                 object_type="agenda_items", object_ids=[item.id])
    session.flush()
