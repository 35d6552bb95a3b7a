"""Reference data edited by administrators: circonscriptions, structures, enumerations."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.domain import audit
from shared.encrypted import Vault
from shared.errors import InvalidInputError
from shared.models import Circonscription, ReferenceItem, Structure
from shared.models.reference import STRUCTURE_TYPES
from shared.reference_defaults import DEFAULT_ITEMS
from shared.sheet_schema import EDITABLE_KINDS
from shared.text import clean_text


def _audit(vault: Vault, action: str, object_type: str, object_id: int) -> None:
    audit.record(vault.session, vault.keyring, vault.actor, action, object_type=object_type,
                 object_ids=[object_id])


def save_circonscription(session: Session, vault: Vault,
                         circonscription: Circonscription | None, *, code: str, name: str,
                         active: bool) -> Circonscription:
    """Create or change a circonscription (its code unique); audited."""
    code = code.strip().upper()
    name = clean_text(name, label="Nom", limit=120, required=True)
    clash = session.scalar(select(Circonscription.id).where(Circonscription.code == code))
    if clash is not None and (circonscription is None or clash != circonscription.id):
        raise InvalidInputError("Une autre circonscription porte déjà ce code.")
    if circonscription is None:
        circonscription = Circonscription()
        session.add(circonscription)
    circonscription.code, circonscription.name, circonscription.active = code, name, active
    session.flush()
    _audit(vault, "circonscription_saved", "circonscriptions", circonscription.id)
    return circonscription


def save_structure(session: Session, vault: Vault, structure: Structure | None, *, name: str,
                   type: str, circonscription_id: int | None, active: bool) -> Structure:
    """Create or change a structure; audited."""
    name = clean_text(name, label="Nom", limit=160, required=True)
    if type not in STRUCTURE_TYPES:
        raise InvalidInputError("Type de structure inconnu.")
    if circonscription_id and session.get(Circonscription, circonscription_id) is None:
        raise InvalidInputError("Circonscription inconnue.")
    if structure is None:
        structure = Structure()
        session.add(structure)
    structure.name, structure.type, structure.active = name, type, active
    structure.circonscription_id = circonscription_id or None
    session.flush()
    _audit(vault, "structure_saved", "structures", structure.id)
    return structure


def ensure_reference_defaults(session: Session) -> int:
    """Insert the default entries of every kind that has none; returns how many were added."""
    added = 0
    for kind, entries in DEFAULT_ITEMS.items():
        if session.scalar(select(ReferenceItem.id).where(ReferenceItem.kind == kind).limit(1)):
            continue
        for position, (code, label) in enumerate(entries, start=1):
            session.add(ReferenceItem(kind=kind, code=code, label=label, position=position))
            added += 1
    session.flush()
    _forget_reference_rows(session)
    return added


def reference_items(session: Session, kind: str, *, include_inactive: bool = False
                    ) -> list[ReferenceItem]:
    query = select(ReferenceItem).where(ReferenceItem.kind == kind)
    if not include_inactive:
        query = query.where(ReferenceItem.active.is_(True))
    return list(session.scalars(query.order_by(ReferenceItem.position, ReferenceItem.id)))


def reference_labels(session: Session, *, active_only: bool = False
                     ) -> dict[str, dict[str, str]]:
    """Every kind's code -> label in order; inactive entries too unless ``active_only``
    (old sheets still show and keep them, forms no longer offer them)."""
    labels: dict[str, dict[str, str]] = {kind: {} for kind in EDITABLE_KINDS}
    for kind, code, label, active in _reference_rows(session):
        if active or not active_only:
            labels.setdefault(kind, {})[code] = label
    return labels


_ROWS_MEMO = "icli.reference_rows"


def _reference_rows(session: Session) -> list[tuple[str, str, str, bool]]:
    """The entries, read once per transaction: a request asks for the labels several times
    (the form's choices, its validation, the page), and every request that shows a sheet
    does. A new transaction reads them again, so another process's change is seen."""
    memo = session.info.get(_ROWS_MEMO)
    if memo is None or memo[0] is not session.get_transaction():
        rows = session.execute(
            select(ReferenceItem.kind, ReferenceItem.code, ReferenceItem.label,
                   ReferenceItem.active)
            .order_by(ReferenceItem.position, ReferenceItem.id)).all()
        memo = session.info[_ROWS_MEMO] = (session.get_transaction(), rows)  # begun by now
    return memo[1]


def _forget_reference_rows(session: Session) -> None:
    session.info.pop(_ROWS_MEMO, None)


CODE_RE = re.compile(r"^[a-z0-9_]{2,40}$")


def save_reference_item(session: Session, vault: Vault, item: ReferenceItem | None, *,
                        kind: str, code: str, label: str, active: bool) -> ReferenceItem:
    """Create an entry, or change the label / activity of one (its code never changes);
    audited."""
    if kind not in EDITABLE_KINDS:
        raise InvalidInputError("Référentiel inconnu.")
    label = clean_text(label, label="Libellé", limit=200, required=True)
    if item is None:
        if not CODE_RE.match(code):
            raise InvalidInputError("Le code : 2 à 40 lettres minuscules, chiffres ou « _ ».")
        if session.scalar(select(ReferenceItem.id).where(ReferenceItem.kind == kind,
                                                         ReferenceItem.code == code)):
            raise InvalidInputError("Ce code existe déjà dans ce référentiel.")
        last = session.scalar(select(func.max(ReferenceItem.position))
                              .where(ReferenceItem.kind == kind)) or 0
        item = ReferenceItem(kind=kind, code=code, position=last + 1)
        session.add(item)
    item.label, item.active = label, active
    session.flush()
    _forget_reference_rows(session)
    _audit(vault, "reference_saved", "reference_items", item.id)
    return item
