"""The referent's edit page as operations: open a sheet for editing, save it (all but the
fields in error), apply one de-identification finding, submit; and the form typed when the
session expired, kept encrypted until its author logs in again.

A save writes its ``sheet_saved`` audit row; a submission goes through
``sheet_workflow.submit`` (completeness, the free-text guard, the review), whose transition
is audited too. The caller commits once, whatever the outcome: a draft is kept even when its
submission is refused.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared import deidentify
from shared.db import utcnow
from shared.domain import audit
from shared.domain import sheet_workflow as workflow
from shared.domain.beneficiaries import (
    DEFAULT_INDEX_BITS,
    Identity,
    identity_errors,
    save_identity,
)
from shared.domain.reference import reference_labels
from shared.domain.sheets import (
    EDITABLE_STATES,
    SheetInvalidError,
    read_values,
    sheet_identity,
    validate_values,
    write_values,
)
from shared.encrypted import Vault
from shared.errors import DomainError, InvalidInputError, InvalidTransitionError
from shared.models import FormStash, RecordKey, Sheet
from shared.sheet_schema import FIELDS

EDIT_PURPOSE = "modification de la fiche"


class NotEditableError(InvalidTransitionError):
    """The sheet left the states its referent may change it in."""


def require_editable(sheet: Sheet) -> None:
    if sheet.status not in EDITABLE_STATES:
        raise NotEditableError(f"La fiche est « {sheet.status_label} » : elle n'est plus "
                               "modifiable.")


# -- opening ------------------------------------------------------------------------------
@dataclass
class OpenedSheet:
    """What the edit page needs: the stored values, the reference entries (all of them, and
    those the form offers), and for a page shown afresh the identity or the restored form."""

    sheet: Sheet
    stored: dict[str, Any]
    labels: dict[str, dict[str, str]]
    offered: dict[str, dict[str, str]]
    identity: dict[str, str] | None = None
    restored: list[tuple[str, str]] | None = None


def open_sheet(session: Session, vault: Vault, sheet: Sheet, *, display: bool = False,
               stash_token: str | None = None) -> OpenedSheet:
    """The sheet as its edit form needs it (audited decryption), or NotEditableError.

    ``display``: the form is shown afresh (not a posted one): with the form its author typed
    when the session expired (``stash_token``, theirs only), else with the identity."""
    require_editable(sheet)
    labels = reference_labels(session)
    stored = read_values(vault, sheet, purpose=EDIT_PURPOSE)
    opened = OpenedSheet(sheet, stored, labels, _offered_labels(session, labels, stored))
    if display:
        if stash_token is not None:
            opened.restored = restore_form(session, vault, sheet, stash_token)
        if opened.restored is None:
            opened.identity = sheet_identity(session, vault, sheet, EDIT_PURPOSE)
    return opened


def _offered_labels(session: Session, labels: dict[str, dict[str, str]],
                    stored: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Active entries, plus any retired entry this sheet still uses (so a save keeps it)."""
    offered = reference_labels(session, active_only=True)
    for spec in FIELDS:
        if not spec.ref:
            continue
        value = stored.get(spec.name)
        used = value if isinstance(value, (list, dict)) else [value]
        for code in used:
            if code and code not in offered[spec.ref]:
                offered[spec.ref][code] = labels[spec.ref].get(code, code)
    return offered


# -- saving -------------------------------------------------------------------------------
@dataclass
class Saved:
    """What a save did, for the page to say it. ``values``: what the form shows again."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)  # by field, French
    hits: dict[str, list[str]] = field(default_factory=dict)  # the person's identity in texts
    saved: bool = False  # the whole draft was saved
    partly_saved: bool = False  # saved but for the fields in error
    finding_gone: bool = False  # the finding clicked no longer matches the text
    submitted: bool = False
    returning: bool = False  # a sheet back from suivi, proposed again
    refusal: str = ""  # why the submission was refused (French), when not by field


def save(session: Session, vault: Vault, opened: OpenedSheet, values: dict[str, Any],
         identity: Identity, *, form_errors: dict[str, str] | None = None, finding: str = "",
         submit: bool = False, actor_id: int | None,
         index_bits: int = DEFAULT_INDEX_BITS) -> Saved:
    """Save the referent's form; then apply ``finding`` (one click on a de-identification
    finding: replaced or dismissed) or submit.

    A draft with errors is saved but for the fields in error, which keep their stored value
    (one mistyped date never costs the texts typed beside it); not when a finding was
    clicked, which needs the whole form valid."""
    sheet = opened.sheet
    require_editable(sheet)
    stored = opened.stored
    values = {**values, deidentify.REVIEW_KEY: stored[deidentify.REVIEW_KEY]}
    errors = dict(form_errors or {})
    errors.update(validate_values(values, opened.labels, submitting=False))
    wrong_identity = identity_errors(identity)
    outcome = Saved(values)
    if (errors or wrong_identity) and not finding:
        kept = {name: stored.get(name) if name in errors else value
                for name, value in values.items()}
        _write(session, vault, sheet, kept, None if wrong_identity else identity, index_bits)
        outcome.partly_saved = True
    errors.update(wrong_identity)
    outcome.errors = errors
    if errors:
        return outcome
    if finding:
        try:
            values = outcome.values = deidentify.apply(values, finding)
        except deidentify.FindingGoneError:
            outcome.finding_gone = True
    _write(session, vault, sheet, values, identity, index_bits)
    outcome.saved = True
    if submit:
        outcome.returning = sheet.status == "retour"
        try:
            workflow.submit(session, vault, sheet, opened.labels, actor_id=actor_id)
        except SheetInvalidError as exc:
            outcome.errors = exc.errors
        except workflow.GuardHitsError as exc:
            outcome.hits = exc.hits
        except DomainError as exc:  # FindingsOpenError among others
            outcome.refusal = exc.message
        else:
            outcome.submitted = True
    return outcome


def _write(session: Session, vault: Vault, sheet: Sheet, values: dict[str, Any],
           identity: Identity | None, index_bits: int) -> None:
    if identity is not None:
        save_identity(session, vault, sheet.beneficiary, sheet.structure_id, identity,
                      index_bits=index_bits)
    write_values(vault, sheet, values)
    audit.record(session, vault.keyring, vault.actor, "sheet_saved", object_type="sheets",
                 object_ids=[sheet.id])


# -- the form of an expired session ---------------------------------------------------------
# The web layer checks that the posted form carries a valid ticket for (user, sheet) before
# stashing it, and hands the token back only to that user's next session.
STASH_LIFETIME = timedelta(hours=24)
STASH_MAX_CHARS = 100_000


def stash_form(session: Session, vault: Vault, *, sheet_id: int, user_id: int,
               pairs: list[tuple[str, str]]) -> str:
    """Keep a posted form, encrypted, for its author; returns the token that restores it.
    One stash per user and sheet (the latest typing wins); expired ones are deleted."""
    body = json.dumps(pairs, ensure_ascii=False)
    if not pairs or len(body) > STASH_MAX_CHARS:
        raise InvalidInputError("Le formulaire a expiré ou n'est pas valide. Rechargez la page et "
                                "recommencez : rien n'a été enregistré.")
    for old in session.scalars(select(FormStash).where(FormStash.user_id == user_id,
                                                       FormStash.sheet_id == sheet_id)):
        _delete_stash(session, old)
    token = secrets.token_urlsafe(24)
    stash = FormStash(token_hash=_token_hash(token), sheet_id=sheet_id, user_id=user_id,
                      payload="")
    session.add(stash)
    session.flush()
    vault.seal(stash, "payload", body)
    for expired in session.scalars(select(FormStash).where(
            FormStash.created_at < utcnow() - STASH_LIFETIME)):
        _delete_stash(session, expired)
    session.flush()
    return token


def restore_form(session: Session, vault: Vault, sheet: Sheet,
                 token: str) -> list[tuple[str, str]] | None:
    """The stashed form of ``sheet``, once, to its author (the vault's actor) within its
    lifetime; None otherwise."""
    stash = session.scalar(select(FormStash).where(FormStash.token_hash == _token_hash(token)))
    if (stash is None or stash.sheet_id != sheet.id or stash.user_id != vault.actor.user_id
            or stash.created_at < utcnow() - STASH_LIFETIME):
        return None
    pairs = json.loads(vault.open(stash, "payload", purpose="restauration d'une saisie")
                       .reveal())
    _delete_stash(session, stash)
    session.flush()
    return [tuple(pair) for pair in pairs]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _delete_stash(session: Session, stash: FormStash) -> None:
    session.execute(delete(RecordKey).where(RecordKey.record_uuid == stash.uuid))
    session.delete(stash)
