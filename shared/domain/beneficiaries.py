"""Beneficiaries: identity sealed under the identity chain, duplicates found by blind index."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shared.crypto import blind_index, normalise_digits, normalise_name
from shared.encrypted import Vault
from shared.errors import InvalidInput
from shared.models import Beneficiary
from shared.protected import IDENTITY_FIELDS
from shared.pseudonym import new_pseudonym

POSTCODE_RE = re.compile(r"^\d{5}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_LENGTH = 200


@dataclass(frozen=True)
class Identity:
    """Plain identity values as typed; validated by ``validate_identity``."""

    nom: str
    prenom: str
    date_naissance: str  # ISO date
    nom_naissance: str = ""
    numero_caf: str = ""
    identifiant_france_travail: str = ""
    adresse: str = ""
    code_postal: str = ""
    commune: str = ""
    telephone: str = ""
    email: str = ""

    def __repr__(self) -> str:  # never print an identity by accident
        return "Identity(<redacted>)"



def validate_identity(identity: Identity, today: date | None = None) -> list[str]:
    """French reasons the identity is refused; never quotes the values."""
    today = today or date.today()
    problems = []
    for f in fields(Identity):
        value = getattr(identity, f.name)
        if len(value) > MAX_LENGTH:
            problems.append(f"{f.name} : {MAX_LENGTH} caractères au plus")
        if any(ord(c) < 32 for c in value):
            problems.append(f"{f.name} : caractères de contrôle interdits")
    if not normalise_name(identity.nom):
        problems.append("nom : obligatoire")
    if not normalise_name(identity.prenom):
        problems.append("prenom : obligatoire")
    try:
        born = date.fromisoformat(identity.date_naissance)
        if not (date(1900, 1, 1) <= born <= today):
            problems.append("date_naissance : hors de la plage admise")
    except ValueError:
        problems.append("date_naissance : date invalide (format AAAA-MM-JJ)")
    if identity.numero_caf and not re.fullmatch(r"\d{5,10}", identity.numero_caf.strip()):
        problems.append("numero_caf : 5 à 10 chiffres")
    if identity.identifiant_france_travail and not re.fullmatch(
            r"[0-9A-Za-z]{7,11}", identity.identifiant_france_travail.strip()):
        problems.append("identifiant_france_travail : 7 à 11 lettres ou chiffres")
    if identity.code_postal and not POSTCODE_RE.match(identity.code_postal.strip()):
        problems.append("code_postal : 5 chiffres")
    if identity.telephone and len(normalise_digits(identity.telephone)) not in (10, 11, 12):
        problems.append("telephone : numéro invalide")
    if identity.email and not EMAIL_RE.match(identity.email.strip()):
        problems.append("email : adresse invalide")
    return problems


def _indexes(vault: Vault, identity: Identity) -> dict[str, int | None]:
    secret = vault.keyring.secret("index")
    name_birth = "|".join([normalise_name(identity.nom), normalise_name(identity.prenom),
                           identity.date_naissance.strip()])
    caf = normalise_digits(identity.numero_caf)
    ft = normalise_name(identity.identifiant_france_travail) + normalise_digits(
        identity.identifiant_france_travail)
    return {
        "idx_name_birth": blind_index(secret, "name_birth", name_birth),
        "idx_caf": blind_index(secret, "caf", caf) if caf else None,
        "idx_france_travail": blind_index(secret, "france_travail", ft) if ft else None,
    }


def find_duplicates(session: Session, vault: Vault, identity: Identity) -> list[Beneficiary]:
    """Beneficiaries with the same person: blind-index candidates confirmed by decryption."""
    idx = _indexes(vault, identity)
    conditions = [getattr(Beneficiary, k) == v for k, v in idx.items() if v is not None]
    candidates = list(session.scalars(select(Beneficiary).where(or_(*conditions))))
    if not candidates:
        return []
    opened = vault.open_many(candidates, ["nom", "prenom", "date_naissance", "numero_caf"],
                             purpose="dedup")
    wanted_name = (normalise_name(identity.nom), normalise_name(identity.prenom),
                   identity.date_naissance.strip())
    wanted_caf = normalise_digits(identity.numero_caf)
    matches = []
    for beneficiary, values in zip(candidates, opened, strict=True):
        name = tuple(normalise_name(values[k].reveal()) if values[k] else ""
                     for k in ("nom", "prenom"))
        same_person = (*name, values["date_naissance"].reveal()) == wanted_name
        caf = normalise_digits(values["numero_caf"].reveal()) if values["numero_caf"] else ""
        if same_person or (wanted_caf and caf == wanted_caf):
            matches.append(beneficiary)
    return matches


def create_beneficiary(session: Session, vault: Vault, identity: Identity) -> Beneficiary:
    """Seal a new beneficiary's identity; the caller has checked for duplicates."""
    problems = validate_identity(identity)
    if problems:
        raise InvalidInput("Identité invalide : " + " ; ".join(problems))
    beneficiary = Beneficiary(pseudonym=new_pseudonym(session), **_indexes(vault, identity))
    session.add(beneficiary)
    session.flush()  # uuid and id exist from here on
    for name in IDENTITY_FIELDS:
        vault.seal(beneficiary, name, getattr(identity, name).strip())
    session.flush()
    return beneficiary


def reindex(vault: Vault, beneficiary: Beneficiary, identity: Identity) -> None:
    """Recompute the blind indexes after an identity change."""
    for name, value in _indexes(vault, identity).items():
        setattr(beneficiary, name, value)
