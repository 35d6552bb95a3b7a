"""Situation sheets: content, validation, the free-text guard, duplicates and who may see what.

Values travel as a plain dict keyed by the field names of ``shared.sheet_schema``: strings for
text, choices and ISO dates, ints, lists for multiple choices, ``{code: intensity}`` for freins
and a list of dicts for the actions engagées.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared import deidentify
from shared.crypto import normalise_digits, normalise_name
from shared.db import utcnow
from shared.domain import audit
from shared.domain.beneficiaries import (
    DEFAULT_INDEX_BITS,
    Identity,
    attach_identity,
    check_identity,
    create_beneficiary,
    find_duplicates,
    identity_record,
    resolve_identity_differences,
)
from shared.encrypted import Vault
from shared.errors import InvalidInputError
from shared.models import Beneficiary, Circonscription, IdentityRecord, Sheet, Structure, User
from shared.protected import IDENTITY_FIELDS
from shared.pseudonym import next_sheet_reference
from shared.sheet_schema import (
    ACTION_KEYS,
    ACTION_ROWS,
    COLUMN_OF_CLASS,
    FIELDS,
    INTENSITE,
    METADATA,
    SheetField,
)
from shared.text import FRENCH_MONTHS, iso_date

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Dates that can only be in the past; others may be up to a few years ahead.
PAST_ONLY = {"debut_accompagnement", "contrat_debut", "radiation_date", "date_information"}
EARLIEST = date(1990, 1, 1)
# States in which the referent may still change the sheet.
# A returning situation (retour) is updated by its referent before it is inscribed again.
EDITABLE_STATES = {"brouillon", "a_completer", "retour"}


class SheetInvalidError(InvalidInputError):
    """Field errors in French, keyed by field name; the messages never quote a value."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("La fiche contient des erreurs : corrigez les champs signalés.")
        self.errors = errors


# -- values ------------------------------------------------------------------------
def empty_value(spec: SheetField) -> Any:
    if spec.kind == "multichoice":
        return []
    if spec.kind == "freins":
        return {}
    if spec.kind == "actions":
        return []
    if spec.kind == "int":
        return None
    return ""


def _is_empty(value: Any) -> bool:
    return value in ("", None, [], {})


def _date(value: str) -> date | None:
    try:
        return iso_date(value)
    except (TypeError, ValueError):
        return None


def _text_problem(text: str, limit: int) -> str | None:
    if _CONTROL.search(text):
        return "Caractères de contrôle non autorisés : retirez-les."
    if limit and len(text) > limit:
        return f"{limit} caractères au plus ({len(text)} saisis)."
    return None


def validate_values(values: dict[str, Any], labels: dict[str, dict[str, str]], *,
                    submitting: bool, today: date | None = None) -> dict[str, str]:
    """French error per field; required fields and cross-field rules only when submitting."""
    today = today or date.today()
    errors: dict[str, str] = {}
    for spec in FIELDS:
        value = values.get(spec.name, empty_value(spec))
        problem = _field_problem(spec, value, labels, today)
        if problem is None and submitting and spec.required and _is_empty(value):
            problem = "Ce champ est obligatoire pour soumettre la fiche."
        if problem:
            errors[spec.name] = problem
    errors.update({name: problem for name, problem in _order_problems(values).items()
                   if name not in errors})
    if submitting:
        if values.get("personne_informee") == "oui" and not values.get("date_information"):
            errors.setdefault("date_information", "Indiquez la date à laquelle la personne "
                                                  "a été informée.")
        if values.get("personne_informee") == "non":
            errors.setdefault("personne_informee", "La personne doit être informée avant que "
                                                   "sa situation soit examinée.")
        if values.get("duree_activite") in ("reduite", "aucune") and not values.get("motif_duree"):
            errors.setdefault("motif_duree", "Précisez la raison de la durée réduite ou de "
                                             "la dispense.")
    return errors


def _order_problems(values: dict[str, Any]) -> dict[str, str]:
    """Dates that contradict each other: an end before its start (on drafts too, like any
    date typed wrong: the field keeps its stored value until it is corrected)."""
    problems = {}
    start, end = _date(values.get("contrat_debut") or ""), _date(values.get("contrat_fin") or "")
    if start and end and end < start:
        problems["contrat_fin"] = ("La fin du contrat ne peut pas précéder sa signature "
                                   f"(le {start:%d/%m/%Y}).")
    for number, row in enumerate(values.get("actions") or [], start=1):
        start, end = _date(str(row.get("debut") or "")), _date(str(row.get("fin") or ""))
        if start and end and end < start:
            problems["actions"] = f"Action de la ligne {number} : la fin précède le début."
            break
    return problems


def _allowed(spec: SheetField, labels: dict[str, dict[str, str]]) -> dict[str, str]:
    return spec.choices if spec.choices is not None else labels.get(spec.ref or "", {})


def _field_problem(spec: SheetField, value: Any, labels: dict[str, dict[str, str]],
                   today: date) -> str | None:
    if _is_empty(value):
        return None
    if spec.kind in ("text", "textarea"):
        return _text_problem(str(value), spec.max_length)
    if spec.kind in ("choice", "yesno"):
        return None if value in _allowed(spec, labels) else "Choix invalide."
    if spec.kind == "multichoice":
        allowed = _allowed(spec, labels)
        return None if all(v in allowed for v in value) else "Choix invalide."
    if spec.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return "Nombre entier attendu."
        if not (spec.minimum or 0) <= value <= (spec.maximum or 10**6):
            return f"Valeur entre {spec.minimum} et {spec.maximum} attendue."
        return None
    if spec.kind == "date":
        return _date_problem(spec.name, value, today)
    if spec.kind == "freins":
        allowed = labels.get("frein", {})
        if not all(code in allowed and level in INTENSITE for code, level in value.items()):
            return "Frein ou intensité invalide."
        return None
    if spec.kind == "actions":
        if len(value) > ACTION_ROWS:
            return f"{ACTION_ROWS} actions au plus."
        for row in value:
            for key in ACTION_KEYS:
                text = str(row.get(key, ""))
                if key in ("debut", "fin"):
                    problem = _date_problem(key, text, today) if text else None
                else:
                    problem = _text_problem(text, spec.max_length)
                if problem:
                    return f"Action « {key} » : {problem}"
        return None
    raise ValueError(f"unknown field kind {spec.kind}")


def _date_problem(name: str, value: str, today: date) -> str | None:
    parsed = _date(value)
    if parsed is None:
        return "Date invalide (format JJ/MM/AAAA)."
    latest = today if name in PAST_ONLY else today + timedelta(days=3 * 365)
    if not EARLIEST <= parsed <= latest:
        return ("La date ne peut pas être dans le futur." if parsed > latest
                else "La date est trop ancienne.")
    return None


def write_values(vault: Vault, sheet: Sheet, values: dict[str, Any]) -> None:
    """Seal the values, one JSON document per data class; metadata goes to its column."""
    groups: dict[str, dict[str, Any]] = {column: {} for column in COLUMN_OF_CLASS.values()}
    for spec in FIELDS:
        value = values.get(spec.name, empty_value(spec))
        if spec.data_class == METADATA:
            setattr(sheet, spec.name, (value == "oui") if spec.kind == "yesno" else (value or None))
        else:
            groups[spec.column][spec.name] = value
    review = values.get(deidentify.REVIEW_KEY) or {}
    for column, group in groups.items():
        # The referent's de-identification decisions (dismissed words) stay with their
        # field's class: a dismissed word of a sensitive text is sealed as sensitive.
        group[deidentify.REVIEW_KEY] = deidentify.review_for_column(review, column)
        vault.seal(sheet, column, json.dumps(group, ensure_ascii=False, sort_keys=True))
    sheet.updated_at = utcnow()
    sheet.open_findings = None  # texts to review again before the next dossier


def read_values(vault: Vault, sheet: Sheet, *, purpose: str,
                columns: tuple[str, ...] = tuple(COLUMN_OF_CLASS.values())) -> dict[str, Any]:
    """Open the requested class columns (sensitive and referent ones are audited)."""
    return read_values_many(vault, [sheet], purpose=purpose, columns=columns)[0]


def read_values_many(vault: Vault, sheets: list[Sheet], *, purpose: str,
                     columns: tuple[str, ...] = tuple(COLUMN_OF_CLASS.values())
                     ) -> list[dict[str, Any]]:
    """``read_values`` for several sheets with one audit row (a dossier's sheets)."""
    if not sheets:
        return []
    result = []
    for sheet, opened in zip(sheets, vault.open_many(sheets, columns, purpose=purpose),
                             strict=True):
        values: dict[str, Any] = {spec.name: empty_value(spec) for spec in FIELDS
                                  if spec.data_class == METADATA or spec.column in columns}
        values["urgent"] = "oui" if sheet.urgent else "non"
        values["motif"] = sheet.motif or ""
        review: dict[str, Any] = {}
        for column in columns:
            secret = opened[column]
            if secret is not None:
                group = json.loads(secret.reveal())
                review.update(group.pop(deidentify.REVIEW_KEY, {}))
                values.update(group)
        values[deidentify.REVIEW_KEY] = review
        result.append(values)
    return result


# -- the free-text guard ---------------------------------------------------------------
GUARD_LABELS = {
    "nom": "le nom de la personne",
    "prenom": "le prénom de la personne",
    "nom_naissance": "le nom de naissance de la personne",
    "date_naissance": "la date de naissance de la personne",
    "numero_caf": "le numéro CAF",
    "identifiant_france_travail": "l'identifiant France Travail",
    "telephone": "le numéro de téléphone",
    "email": "l'adresse e-mail",
    "adresse": "l'adresse",
}
_STREET_WORDS = {"RUE", "AVENUE", "BOULEVARD", "ALLEE", "IMPASSE", "PLACE", "CHEMIN", "ROUTE",
                 "QUAI", "COURS", "SQUARE", "VILLA", "CITE", "RESIDENCE", "BATIMENT", "BAT",
                 "ESCALIER", "ETAGE", "APPARTEMENT", "APPT", "BIS", "TER", "DES", "DU", "DE",
                 "LA", "LE", "LES", "SAINT", "SAINTE"}
# Between two digits of a number as people type it: nothing, or one space, dot, dash or slash.
_DIGIT_GAP = r"[\s.\-/]?"
# A French phone number's national prefix: 0, or +33 / 0033 (with an optional "(0)").
_PHONE_PREFIX = r"(?:(?:\+|00)\s?33\s?(?:\(0\)\s?)?|0)?"


# Particles of names ("Le Gall", "Ben Youssef", "Da Silva") are ordinary words of French text.
_PARTICLES = {"DE", "DU", "DES", "LE", "LA", "LES", "D", "L", "DA", "DAS", "DO", "DOS", "DI",
              "VAN", "VON", "DER", "DEN", "BEN", "BEL", "BIN", "EL", "AL", "AIT", "MC", "MAC",
              "ET", "Y", "SAINT", "SAINTE"}


def _name_tokens(name: str) -> set[str]:
    """Distinctive words of a name; a short name that is all particles is kept whole."""
    words = _words(name)
    tokens = {w for w in words if len(w) >= 3 and w not in _PARTICLES}
    if not tokens and words:
        tokens = {"".join(sorted(words, key=len, reverse=True)[:1])}
    return tokens


def _words(text: str) -> set[str]:
    return {normalise_name(w) for w in re.split(r"[^\w]+", text) if w} - {""}


def _free_texts(values: dict[str, Any]) -> dict[str, str]:
    texts = {}
    for spec in FIELDS:
        if not spec.free_text:
            continue
        value = values.get(spec.name)
        if spec.kind == "actions":
            value = " ".join(str(v) for row in value or [] for v in row.values())
        if value:
            texts[spec.name] = str(value)
    return texts


def identity_hits(identity: dict[str, str], values: dict[str, Any]) -> dict[str, list[str]]:
    """Which free-text fields of a sheet contain which part of the person's own identity."""
    return identity_hits_in_texts(identity, _free_texts(values))


def identity_hits_in_texts(identity: dict[str, str],
                           texts: dict[str, str]) -> dict[str, list[str]]:
    """Which of ``texts`` (name -> text) contain which part of the person's own identity.

    Names and address words match as whole words (accents and case ignored); numbers match
    whatever their spacing; the result names kinds (``GUARD_LABELS``), never the values.
    """
    hits: dict[str, list[str]] = {}
    for name, text in texts.items():
        found = {key for _, _, key in identity_spans(identity, text)}
        if found:
            hits[name] = [GUARD_LABELS[k] for k in GUARD_LABELS if k in found]
    return hits


def identity_spans(identity: dict[str, str], text: str) -> list[tuple[int, int, str]]:
    """Where ``text`` holds a part of the person's own identity: (start, end, identity field),
    in order, for a page to highlight them (issue 15)."""
    needles: dict[str, set[str]] = {key: _name_tokens(identity.get(key, ""))
                                     for key in ("nom", "prenom", "nom_naissance")}
    needles["adresse"] = {w for w in _words(identity.get("adresse", ""))
                          if len(w) >= 4 and w not in _STREET_WORDS and not w.isdigit()}
    numbers = {
        "numero_caf": normalise_digits(identity.get("numero_caf", "")),
        "telephone": normalise_digits(identity.get("telephone", ""))[-9:],
        "identifiant_france_travail": normalise_digits(
            identity.get("identifiant_france_travail", "")),
    }
    email = identity.get("email", "").strip().lower()
    spans = []
    for word in re.finditer(r"\w+", text):
        folded = normalise_name(word.group())
        spans += [(word.start(), word.end(), key) for key, needle in needles.items()
                  if folded and folded in needle]
    for key, number in numbers.items():
        if len(number) >= 5:
            spans += [(m.start(), m.end(), key)
                      for m in _number_regex(number, key == "telephone").finditer(text)]
    if email:
        spans += [(m.start(), m.end(), "email")
                  for m in re.finditer(re.escape(email), text, re.IGNORECASE)]
    born = _date(identity.get("date_naissance", ""))
    if born is not None:
        spans += [(m.start(), m.end(), "date_naissance")
                  for m in _birth_date_regex(born).finditer(text)]
    return sorted(spans)


def _number_regex(number: str, phone: bool) -> re.Pattern[str]:
    """The whole number however its digits are grouped (06 12 34 56 78, 061-234-5678,
    +33 6 12 34 56 78), never a part of a longer number: "CAF 1234567 - 2024" holds it,
    "12345678" does not hold 1234567."""
    body = _DIGIT_GAP.join(number)
    return re.compile(rf"(?<!\d){_PHONE_PREFIX if phone else ''}{body}(?!\d)")


def _birth_date_regex(born: date) -> re.Pattern[str]:
    """The birth date however it is typed: 05/03/1981, 5.3.81, 1981-03-05, 1981/3/5,
    5 mars 1981, 05 mars 1981, 1er mars 1981."""
    month = FRENCH_MONTHS[born.month - 1]
    plain_month = normalise_name(month).lower()
    return re.compile(
        rf"(?<!\d)0?{born.day}\s?[/.-]\s?0?{born.month}\s?[/.-]\s?(?:{born.year}|"
        rf"{born.year % 100:02d})(?!\d)|(?<!\d){born.year}\s?[/.-]\s?0?{born.month}\s?[/.-]"
        rf"\s?0?{born.day}(?!\d)|(?<!\d)0?{born.day}(?:er)?\s+(?:{month}|{plain_month})\s+"
        rf"{born.year}", re.IGNORECASE)


# -- creating a sheet, with duplicate detection ---------------------------------------
@dataclass
class StartedSheet:
    sheet: Sheet
    notice: str | None = None  # French, reveals no detail of another structure's file
    existing: list[Sheet] = field(default_factory=list)
    # Identity fields typed differently from what the structure already holds (issue 15):
    # the stored values are kept until the referent chooses.
    differences: list[str] = field(default_factory=list)


def start_sheet(session: Session, vault: Vault, *, structure: Structure, author_id: int | None,
                identity: Identity, index_bits: int = DEFAULT_INDEX_BITS) -> StartedSheet:
    """A draft sheet for this person; an existing beneficiary is reused (blind index +
    confirmed by decryption), with a notice about the sheets that already exist. Audited
    (``sheet_created``); an invalid identity raises IdentityInvalidError, its reasons by field."""
    check_identity(identity)
    if structure.circonscription is None:
        raise InvalidInputError("Votre structure n'est rattachée à aucune circonscription : "
                                "contactez l'administrateur·rice.")
    # Sheets of a circonscription start one at a time: the circonscription's row is locked
    # (a no-op UPDATE: a row lock on PostgreSQL, the write lock on SQLite) before the
    # duplicate search, so two clicks or two colleagues cannot create the same person
    # twice, nor take the same reference.
    session.execute(update(Circonscription).where(
        Circonscription.id == structure.circonscription_id)
        .values(id=Circonscription.id).execution_options(synchronize_session=False))
    matches = find_duplicates(session, vault, identity)
    notice, existing, differences = None, [], []
    if matches:
        # The same person: the sheet joins them; this structure keeps its own record of
        # the identity and never sees another structure's.
        beneficiary = matches[0].beneficiary
        differences = attach_identity(session, vault, beneficiary, structure.id, identity,
                                      index_bits=index_bits)
        others = list(session.scalars(select(Sheet).where(
            Sheet.beneficiary_id == beneficiary.id,
            Sheet.status.not_in(("retiree", "close", "non_recevable")))))
        existing = [s for s in others if s.structure_id == structure.id]
        if existing:
            notice = ("Une fiche existe déjà pour cette personne dans votre structure : "
                      + ", ".join(f"{s.reference} ({s.status_label})" for s in existing)
                      + ". La nouvelle fiche est rattachée à la même personne.")
        elif others:
            notice = ("Cette personne est déjà suivie par une autre structure. La nouvelle "
                      "fiche est rattachée à la même personne.")
    else:
        beneficiary = create_beneficiary(session, vault, identity, structure.id,
                                         index_bits=index_bits).beneficiary
    now = utcnow()
    sheet = Sheet(reference=next_sheet_reference(session, structure.circonscription.code,
                                                 now.year),
                  beneficiary=beneficiary, structure_id=structure.id,
                  circonscription_id=structure.circonscription_id, author_id=author_id,
                  status="brouillon")
    session.add(sheet)
    session.flush()
    write_values(vault, sheet, {})
    beneficiary.last_activity_at = now
    audit.record(session, vault.keyring, vault.actor, "sheet_created", object_type="sheets",
                 object_ids=[sheet.id])
    return StartedSheet(sheet, notice, existing, differences)


def sheet_identity(session: Session, vault: Vault, sheet: Sheet, purpose: str) -> dict[str, str]:
    """The identity as the sheet's own structure recorded it (audited decryption)."""
    record = identity_record(session, sheet.beneficiary, sheet.structure_id)
    if record is None:
        return dict.fromkeys(IDENTITY_FIELDS, "")
    opened = vault.open_many([record], IDENTITY_FIELDS, purpose=purpose)[0]
    return {k: (v.reveal() if v else "") for k, v in opened.items()}


def choose_identity_values(session: Session, vault: Vault, sheet: Sheet, typed: dict[str, str],
                           update: set[str], *, index_bits: int = DEFAULT_INDEX_BITS) -> None:
    """The referent's choice between stored and typed identity values, while the sheet can
    be edited (as the edit page: an inscribed sheet's identity is not changed here)."""
    if sheet.status not in EDITABLE_STATES:
        raise InvalidInputError("La fiche n'est plus modifiable : l'identité enregistrée est "
                                "conservée.")
    resolve_identity_differences(session, vault, sheet.beneficiary, sheet.structure_id, typed,
                                 update, index_bits=index_bits)


def person_identities(session: Session, vault: Vault, beneficiary: Beneficiary,
                      purpose: str) -> list[dict[str, str]]:
    """The person's identity as every structure recorded it (one audited decryption): a
    guard checks texts against all of them, since a phone known to one structure only is
    the person's all the same."""
    records = list(session.scalars(select(IdentityRecord).where(
        IdentityRecord.beneficiary_id == beneficiary.id).order_by(IdentityRecord.id)))
    if not records:
        return []
    return [{k: (v.reveal() if v else "") for k, v in opened.items()}
            for opened in vault.open_many(records, IDENTITY_FIELDS, purpose=purpose)]


# -- who may see what -------------------------------------------------------------------
def referent_may_edit(user: User, sheet: Sheet) -> bool:
    """The author, or a manager of the structure (chef·fe de service)."""
    return sheet.structure_id in user.structure_ids and (
        sheet.author_id == user.id or sheet.structure_id in user.managed_structure_ids)


def facilitator_may_see(user: User, sheet: Sheet) -> bool:
    """Sheets addressed to the facilitator's circonscriptions, once submitted (a draft the
    referent withdrew before submitting never reaches the instance)."""
    return sheet.circonscription_id in user.circonscription_ids and sheet.submitted_at is not None


def sensitive_details_shared(values: dict[str, Any]) -> bool:
    """Whether the instance may read the sheet's sensitive details (health, justice, debts…):
    only if the referent chose to share them (« partager_sensible »). Otherwise the
    facilitator's page and the dossier de séance show the categories of freins only; the
    author's structure always sees its own details."""
    return values.get("partager_sensible") == "oui"


def referent_sheets_query(user: User):
    own = Sheet.author_id == user.id
    managed = Sheet.structure_id.in_(user.managed_structure_ids or {-1})
    return select(Sheet).where(Sheet.structure_id.in_(user.structure_ids or {-1}),
                               own | managed)


def facilitator_sheets_query(user: User):
    return select(Sheet).where(Sheet.circonscription_id.in_(user.circonscription_ids or {-1}),
                               Sheet.submitted_at.is_not(None))
