"""Beneficiaries: identity sealed under the identity chain, duplicates found by blind index."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from shared.crypto import (  # callers holding Settings pass settings.index_bits
    DEFAULT_INDEX_BITS,
    KeyRing,
    blind_index,
    normalise_digits,
    normalise_name,
)
from shared.domain import audit
from shared.encrypted import Vault
from shared.errors import InvalidInputError
from shared.models import Beneficiary, IdentityRecord
from shared.protected import IDENTITY_FIELDS
from shared.pseudonym import new_pseudonym
from shared.text import iso_date, iso_date_or_typed

POSTCODE_RE = re.compile(r"^\d{5}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"\+?[0-9 .()-]+")
MAX_LENGTH = 200
BIRTH_DATE_MIN = date(1900, 1, 1)  # the earliest birth date accepted (the latest: today)


@dataclass(frozen=True)
class Identity:
    """Plain identity values as typed; validated by ``validate_identity``."""

    nom: str
    prenom: str
    date_naissance: str  # AAAA-MM-JJ once constructed (JJ/MM/AAAA typed is converted)
    nom_naissance: str = ""
    numero_caf: str = ""
    identifiant_france_travail: str = ""
    adresse: str = ""
    code_postal: str = ""
    commune: str = ""
    telephone: str = ""
    email: str = ""

    def __post_init__(self) -> None:
        # One spelling of a birth date: the duplicate index is computed from it.
        object.__setattr__(self, "date_naissance", iso_date_or_typed(self.date_naissance))

    def __repr__(self) -> str:  # never print an identity by accident
        return "Identity(<redacted>)"



class IdentityInvalidError(InvalidInputError):
    """The identity is refused; ``errors`` gives each field's French reason (for a form)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Identité invalide : " + " ; ".join(problems))
        self.errors: dict[str, str] = {}
        for problem in problems:  # "field : reason"
            name, _, reason = problem.partition(" : ")
            self.errors.setdefault(name, reason[:1].upper() + reason[1:] + ".")


def check_identity(identity: Identity) -> None:
    """Raise IdentityInvalidError unless ``validate_identity`` finds nothing."""
    problems = validate_identity(identity)
    if problems:
        raise IdentityInvalidError(problems)


def identity_errors(identity: Identity) -> dict[str, str]:
    """``validate_identity``'s reasons keyed by field, for a form."""
    problems = validate_identity(identity)
    return IdentityInvalidError(problems).errors if problems else {}


# What every identity holds, from the first draft on: the duplicate search needs them.
REQUIRED_IDENTITY = ("nom", "prenom", "date_naissance")


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
    for name in ("nom", "prenom"):
        value = getattr(identity, name)
        if not normalise_name(value):
            problems.append(f"{name} : " + ("au moins une lettre" if value.strip()
                                            else "obligatoire"))
    try:
        born = iso_date(identity.date_naissance)
        if not (BIRTH_DATE_MIN <= born <= today):
            problems.append("date_naissance : la date de naissance doit être comprise entre le "
                            f"{BIRTH_DATE_MIN:%d/%m/%Y} et aujourd'hui")
    except ValueError:
        problems.append("date_naissance : date invalide (format JJ/MM/AAAA)")
    if identity.numero_caf and not re.fullmatch(r"\d{5,10}", identity.numero_caf.strip()):
        problems.append("numero_caf : 5 à 10 chiffres")
    if identity.identifiant_france_travail and not re.fullmatch(
            r"[0-9A-Za-z]{7,11}", identity.identifiant_france_travail.strip()):
        problems.append("identifiant_france_travail : 7 à 11 lettres ou chiffres")
    if identity.code_postal and not POSTCODE_RE.match(identity.code_postal.strip()):
        problems.append("code_postal : 5 chiffres")
    if identity.telephone and not _plausible_phone(identity.telephone):
        problems.append("telephone : numéro invalide (10 chiffres, ou +indicatif)")
    if identity.email and not EMAIL_RE.match(identity.email.strip()):
        problems.append("email : adresse invalide")
    return problems


def _plausible_phone(value: str) -> bool:
    """French (0X XX XX XX XX) or international (+33 6…, 0033 6…): digits and the usual
    separators only, the length of a real number."""
    value = value.strip()
    if not PHONE_RE.fullmatch(value):
        return False
    digits = normalise_digits(value)
    if value.startswith("+"):
        return 8 <= len(digits) <= 15
    if digits.startswith("00"):
        return 10 <= len(digits) <= 17
    return len(digits) == 10 and digits.startswith("0")


def indexes(keyring: KeyRing, identity: Identity, version: int,
            bits: int) -> dict[str, int | None]:
    """The blind indexes of an identity under one version of the index secret, ``bits``
    wide."""
    secret = keyring.key("index", version)
    caf = normalise_digits(identity.numero_caf)
    ft = normalise_name(identity.identifiant_france_travail) + normalise_digits(
        identity.identifiant_france_travail)
    return {
        "idx_name_birth": blind_index(secret, "name_birth", _name_birth(identity), bits),
        "idx_caf": blind_index(secret, "caf", caf, bits) if caf else None,
        "idx_france_travail": blind_index(secret, "france_travail", ft, bits) if ft else None,
    }


def _name_birth(identity: Identity) -> str:
    return "|".join([normalise_name(identity.nom), normalise_name(identity.prenom),
                     identity.date_naissance.strip()])


def find_duplicates(session: Session, vault: Vault, identity: Identity) -> list[IdentityRecord]:
    """Records of the same person: blind-index candidates (name and birth date, CAF or
    France Travail number) confirmed by an audited decryption of name and birth date.

    A number alone never confirms: a typo in it must not attach a sheet to a stranger.
    """
    # Every version and width in use is queried: during a rotation of the index secret or
    # after a change of the expected population, records are on the old one or the new one.
    vault.keyring.primary_version("index")  # KeyNotFoundError where the chain is not held
    held = {version.version for version in vault.keyring.versions("index")}
    in_use = session.execute(select(IdentityRecord.index_version, IdentityRecord.index_bits)
                             .distinct()).all()
    conditions = []
    for version, bits in in_use:
        if version not in held:
            continue
        idx = indexes(vault.keyring, identity, version, bits)
        conditions.append(and_(IdentityRecord.index_version == version,
                               IdentityRecord.index_bits == bits,
                               or_(*(getattr(IdentityRecord, k) == v
                                     for k, v in idx.items() if v is not None))))
    if not conditions:
        return []
    candidates = list(session.scalars(select(IdentityRecord).where(or_(*conditions))
                                      .order_by(IdentityRecord.id)))
    if not candidates:
        return []
    opened = vault.open_many(candidates, ["nom", "prenom", "date_naissance"], purpose="dedup")
    wanted = _name_birth(identity)
    return [record for record, values in zip(candidates, opened, strict=True)
            if _name_birth(Identity(**{k: (v.reveal() if v else "")
                                       for k, v in values.items()})) == wanted]


def create_beneficiary(session: Session, vault: Vault, identity: Identity,
                       structure_id: int | None = None, *,
                       index_bits: int = DEFAULT_INDEX_BITS) -> IdentityRecord:
    """A new person (pseudonym, keys) with the filing structure's record of their identity."""
    check_identity(identity)
    beneficiary = Beneficiary(pseudonym=new_pseudonym(session))
    session.add(beneficiary)
    session.flush()
    return save_identity(session, vault, beneficiary, structure_id, identity,
                         index_bits=index_bits)


def identity_record(session: Session, beneficiary: Beneficiary,
                    structure_id: int | None) -> IdentityRecord | None:
    return session.scalar(select(IdentityRecord).where(
        IdentityRecord.beneficiary_id == beneficiary.id,
        IdentityRecord.structure_id.is_(None) if structure_id is None
        else IdentityRecord.structure_id == structure_id))


def save_identity(session: Session, vault: Vault, beneficiary: Beneficiary,
                  structure_id: int | None, identity: Identity, *,
                  index_bits: int = DEFAULT_INDEX_BITS) -> IdentityRecord:
    """Seal exactly what the structure typed (an emptied field is emptied) into its record,
    indexed ``index_bits`` wide under the primary index version."""
    check_identity(identity)
    record = identity_record(session, beneficiary, structure_id)
    if record is None:
        record = IdentityRecord(beneficiary=beneficiary, structure_id=structure_id)
        session.add(record)
        session.flush()  # uuid and id exist from here on
    for name in IDENTITY_FIELDS:
        vault.seal(record, name, getattr(identity, name).strip())
    version = vault.keyring.primary_version("index")
    record.index_version, record.index_bits = version, index_bits
    for name, value in indexes(vault.keyring, identity, version, index_bits).items():
        setattr(record, name, value)
    session.flush()
    return record


def stored_identity(vault: Vault, record: IdentityRecord, purpose: str) -> dict[str, str]:
    """Every identity field of one structure's record (an audited decryption)."""
    opened = vault.open_many([record], IDENTITY_FIELDS, purpose=purpose)[0]
    return {name: (value.reveal() if value else "") for name, value in opened.items()}


ADDRESS_FIELDS = ("adresse", "code_postal", "commune")


def attach_identity(session: Session, vault: Vault, beneficiary: Beneficiary,
                    structure_id: int | None, typed: Identity, *,
                    index_bits: int = DEFAULT_INDEX_BITS) -> list[str]:
    """The structure's record of a person it may already know, completed by what was typed.

    A stored value is never erased nor replaced here (issue 15: a new sheet typed with the
    name and birth date only wiped the CAF number, the address…): typed values fill the empty
    fields only. Returns the fields whose typed value differs from the stored one, for the
    referent to choose (``resolve_identity_differences``).
    """
    record = identity_record(session, beneficiary, structure_id)
    if record is None:
        save_identity(session, vault, beneficiary, structure_id, typed, index_bits=index_bits)
        return []
    stored = stored_identity(vault, record, "rattachement d'une nouvelle fiche")
    typed_values = {name: getattr(typed, name).strip() for name in IDENTITY_FIELDS}
    completed = {name: stored[name] or typed_values[name] for name in IDENTITY_FIELDS}
    # The address is one value: a stored street never gets another address's postcode.
    if any(stored[name] for name in ADDRESS_FIELDS):
        completed |= {name: stored[name] for name in ADDRESS_FIELDS}
    if completed != stored:
        save_identity(session, vault, beneficiary, structure_id, Identity(**completed),
                      index_bits=index_bits)
    differing = [name for name in IDENTITY_FIELDS
                 if typed_values[name] and completed[name] != typed_values[name]]
    if set(differing) & set(ADDRESS_FIELDS):  # chosen together, all three shown
        differing = [name for name in IDENTITY_FIELDS
                     if name in differing or (name in ADDRESS_FIELDS and typed_values[name])]
    return differing


def resolve_identity_differences(session: Session, vault: Vault, beneficiary: Beneficiary,
                                 structure_id: int, typed: dict[str, str],
                                 update: set[str], *,
                                 index_bits: int = DEFAULT_INDEX_BITS) -> IdentityRecord:
    """Apply the referent's choice per differing field: the typed value replaces the stored
    one for the fields in ``update``, the others keep the stored value. An empty typed value
    never erases. Audited with the field names only, never the values."""
    unknown = (set(typed) | update) - set(IDENTITY_FIELDS)
    if unknown or not update <= set(typed):
        raise InvalidInputError("Choix invalide : rechargez la page.")
    record = identity_record(session, beneficiary, structure_id)
    if record is None:
        raise InvalidInputError("Cette structure n'a pas encore d'identité enregistrée pour la "
                                "personne.")
    values = stored_identity(vault, record, "choix entre identité enregistrée et saisie")
    values.update({name: typed[name].strip() for name in update if typed[name].strip()})
    save_identity(session, vault, beneficiary, structure_id, Identity(**values),
                  index_bits=index_bits)
    audit.record(session, vault.keyring, vault.actor, "identity_differences_resolved",
                 object_type="identity_records", object_ids=[record.id],
                 fields=[f"{'updated' if name in update else 'kept'}:{name}"
                         for name in IDENTITY_FIELDS if name in typed])
    return record
