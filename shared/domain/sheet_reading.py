"""A sheet as each viewer may read it: its author's structure sees everything, the
instance (facilitators) sees the situation, and the sensitive details only when the referent
shared them. Every decryption is audited with the purpose « consultation de la fiche »."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.crypto import Secret
from shared.domain import documents
from shared.domain import sheet_workflow as workflow
from shared.domain.meetings import previous_passages
from shared.domain.sheets import (
    read_values,
    referent_may_edit,
    sensitive_details_shared,
    sheet_identity,
)
from shared.encrypted import Vault
from shared.models import (
    AgendaItem,
    Decision,
    DecisionAction,
    DocumentJob,
    GeneratedDocument,
    Sheet,
    SheetEvent,
    User,
)
from shared.protected import IDENTIFYING, SENSITIVE, SITUATIONAL
from shared.sheet_schema import COLUMN_OF_CLASS

PURPOSE = "consultation de la fiche"


@dataclass
class SheetFile:
    """What the sheet's page shows to one viewer (opened secrets stay ``Secret``s)."""

    sheet: Sheet
    is_referent: bool  # the author's structure: identity, documents, sensitive details
    values: dict[str, Any]
    show_sensitive: bool
    identity: dict[str, str] | None
    events: list[tuple[SheetEvent, Secret | None]]
    passages: list[AgendaItem]
    decisions: list[tuple[Decision, Secret | None, list[tuple[DecisionAction, Secret | None]]]]
    feedback: list[GeneratedDocument]
    information_job: DocumentJob | None
    information: GeneratedDocument | None
    allowed: set[str]


def consult(session: Session, vault: Vault, sheet: Sheet, viewer: User) -> SheetFile:
    """The sheet for ``viewer``, who may see it (the caller checked: its author's structure,
    or a facilitator of its circonscription once submitted)."""
    is_referent = viewer.has_role("referent") and referent_may_edit(viewer, sheet)
    # Sensitive details: the author structure (read with the rest: one audit row), or the
    # instance when the referent shared them (known once the situation is read).
    columns = (COLUMN_OF_CLASS[SITUATIONAL],) + ((COLUMN_OF_CLASS[IDENTIFYING],
                                                   COLUMN_OF_CLASS[SENSITIVE])
                                                  if is_referent else ())
    values = read_values(vault, sheet, purpose=PURPOSE, columns=columns)
    show_sensitive = is_referent or sensitive_details_shared(values)
    if show_sensitive and not is_referent:
        values.update(read_values(vault, sheet, purpose=PURPOSE,
                                  columns=(COLUMN_OF_CLASS[SENSITIVE],)))
    identity = sheet_identity(session, vault, sheet, PURPOSE) if is_referent else None
    events = [(e, vault.open(e, "comment")) for e in sheet.events]
    passages = previous_passages(session, sheet)
    feedback = [documents.latest_document(session, item.meeting_id, "feedback", sheet.id)
                for item in passages] if is_referent else []
    decisions = [(d, vault.open(d, "motivation"),
                  [(a, vault.open(a, "label")) for a in d.actions])
                 for d in session.scalars(select(Decision).where(Decision.sheet_id == sheet.id)
                                          .order_by(Decision.id))]
    information_job, information = (documents.information_note(session, sheet.id)
                                    if is_referent else (None, None))
    return SheetFile(sheet, is_referent, values, show_sensitive, identity, events, passages,
                     decisions, [d for d in feedback if d is not None], information_job,
                     information, workflow.allowed_actions(sheet))
