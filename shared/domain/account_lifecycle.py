"""A referent leaves: their open sheets go to a colleague of the same structure."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.domain import audit, notifications
from shared.encrypted import Vault
from shared.errors import InvalidInputError
from shared.models import Sheet, User

# A sheet in one of these states needs nobody any more: it stays with its author.
CLOSED_STATES = ("close", "retiree", "non_recevable")


def open_sheets(session: Session, author: User) -> list[Sheet]:
    """The sheets ``author`` wrote that are still in progress, in their structures."""
    return list(session.scalars(select(Sheet).where(
        Sheet.author_id == author.id, Sheet.status.not_in(CLOSED_STATES)).order_by(Sheet.id)))


def colleagues(session: Session, departing: User) -> list[User]:
    """The active referents of a structure where ``departing`` has open sheets, by name.
    The sheets' structures, not the account's: an account already moved elsewhere (or
    deactivated) still hands over what it left behind."""
    structures = {sheet.structure_id for sheet in open_sheets(session, departing)}
    return [user for user in session.scalars(select(User).where(User.active.is_(True),
                                                                 User.id != departing.id)
                                             .order_by(User.full_name))
            if user.structure_ids & structures]


def reassign_open_sheets(session: Session, vault: Vault, departing: User,
                         colleague: User) -> list[int]:
    """Give every open sheet ``departing`` wrote in a structure of ``colleague`` to
    ``colleague``, who is notified of each (``sheet_reassigned``, their usual delivery
    mode). Audited once (``sheets_reassigned``: the sheets' ids, the two accounts' ids as
    purpose). Returns the ids of the sheets moved."""
    if colleague.id == departing.id:
        raise InvalidInputError("Choisissez un·e autre référent·e que le compte qui part.")
    if not colleague.active or not colleague.has_role("referent"):
        raise InvalidInputError("Le ou la collègue doit être un·e référent·e actif·ve.")
    moved = [sheet for sheet in open_sheets(session, departing)
             if sheet.structure_id in colleague.structure_ids]
    if not moved:
        raise InvalidInputError("Le ou la collègue doit appartenir à la structure des fiches "
                                "en cours de ce compte.")
    for sheet in moved:
        sheet.author_id = colleague.id
        notifications.sheet_reassigned(session, sheet, colleague)
    session.flush()
    audit.record(session, vault.keyring, vault.actor, "sheets_reassigned",
                 object_type="sheets", object_ids=[sheet.id for sheet in moved],
                 purpose=f"users:{departing.id}->{colleague.id}")
    return [sheet.id for sheet in moved]
