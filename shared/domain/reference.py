"""Reference data edited by administrators: circonscriptions and structures."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import InvalidInput
from shared.models import Circonscription, Structure
from shared.models.reference import STRUCTURE_TYPES


def save_circonscription(session: Session, circonscription: Circonscription | None, *,
                         code: str, name: str, active: bool) -> Circonscription:
    code = code.strip().upper()
    clash = session.scalar(select(Circonscription.id).where(Circonscription.code == code))
    if clash is not None and (circonscription is None or clash != circonscription.id):
        raise InvalidInput("Une autre circonscription porte déjà ce code.")
    if circonscription is None:
        circonscription = Circonscription()
        session.add(circonscription)
    circonscription.code, circonscription.name, circonscription.active = code, name.strip(), active
    session.flush()
    return circonscription


def save_structure(session: Session, structure: Structure | None, *, name: str, type: str,
                   circonscription_id: int | None, active: bool) -> Structure:
    if type not in STRUCTURE_TYPES:
        raise InvalidInput("Type de structure inconnu.")
    if circonscription_id and session.get(Circonscription, circonscription_id) is None:
        raise InvalidInput("Circonscription inconnue.")
    if structure is None:
        structure = Structure()
        session.add(structure)
    structure.name, structure.type, structure.active = name.strip(), type, active
    structure.circonscription_id = circonscription_id or None
    session.flush()
    return structure
