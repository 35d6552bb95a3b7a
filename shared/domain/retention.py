"""Retention (RGPD, docs/operations.md): what is purged when, by crypto-shredding.

- A person's identity records and the contents of their sheets go ``closed_months`` after
  their last situation was closed (closed, withdrawn or not admissible), and in any case
  ``inactive_months`` after the last activity on their file.
- Purging a person deletes their wrapped data keys (every chain, every version): whatever
  ciphertext remains anywhere (a backup, a free page) can no longer be opened once the KEK
  that wrapped those keys is retired. It also deletes the ciphertexts themselves, the blind
  indexes (with the identity records), the per-person documents (fiche retour) and the
  form stashes of their sheets. What stays, pseudonymous and without content: the beneficiary
  row (pseudonym: the kept minutes name the situation by it), the sheets' metadata
  (reference, status, dates, structure, motif: the sessions' statistics count them), the
  decisions' avis codes and the history of status changes without comments.
- Session dossiers hold the pseudonymised texts of every situation of the session, under
  the dossier's own key: the dossiers of sessions older than ``closed_months`` are deleted
  with their keys. The agenda, attendance sheet and minutes (PV) stay: they name situations
  by reference and pseudonym only, and the minutes are archives (AD93 decides their fate).
- Audit rows older than ``audit_months`` are deleted; the last deleted row's MAC becomes the
  signed anchor the chain is verified from.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.crypto import KeyRing
from shared.db import utcnow
from shared.domain import audit
from shared.models import (
    AuditEvent,
    AvisRevision,
    Beneficiary,
    Decision,
    DecisionAction,
    DocumentJob,
    FormalDecision,
    FormStash,
    GeneratedDocument,
    GlobalSupport,
    IdentityRecord,
    MaintenanceRun,
    Meeting,
    RecordKey,
    Sheet,
    SheetEvent,
)

# A situation is over in these states; a person with no other sheet is "closed" from then.
FINAL_STATES = ("close", "retiree", "non_recevable")
REASONS = {"closed": "situation close", "inactive": "sans activité"}


@dataclass(frozen=True)
class Policy:
    closed_months: int = 12
    inactive_months: int = 24
    audit_months: int = 12

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(settings.retention_closed_months, settings.retention_inactive_months,
                   settings.retention_audit_months)


@dataclass(frozen=True)
class DuePerson:
    beneficiary_id: int
    reason: str  # key of REASONS
    sheet_references: tuple[str, ...]


@dataclass
class Report:
    dry_run: bool
    people: list[DuePerson] = field(default_factory=list)
    dossier_ids: list[int] = field(default_factory=list)
    audit_rows: int = 0


def months_ago(now: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (clamped to the month end)."""
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


def due_people(session: Session, policy: Policy, now: datetime) -> list[DuePerson]:
    """People whose data must go now, with the reason (ids and references only)."""
    inactive_before = months_ago(now, policy.inactive_months)
    closed_before = months_ago(now, policy.closed_months)
    still_open = select(Sheet.beneficiary_id).where(Sheet.status.not_in(FINAL_STATES))
    closed_at = (select(Sheet.beneficiary_id, func.max(SheetEvent.at).label("closed_at"))
                 .join(SheetEvent, SheetEvent.sheet_id == Sheet.id)
                 .where(SheetEvent.to_status.in_(FINAL_STATES))
                 .group_by(Sheet.beneficiary_id).subquery())
    reasons: dict[int, str] = {}
    for beneficiary_id in session.scalars(
            select(Beneficiary.id).join(closed_at, closed_at.c.beneficiary_id == Beneficiary.id)
            .where(Beneficiary.purged_at.is_(None), closed_at.c.closed_at < closed_before,
                   Beneficiary.id.not_in(still_open))):
        reasons[beneficiary_id] = "closed"
    for beneficiary_id in session.scalars(
            select(Beneficiary.id).where(Beneficiary.purged_at.is_(None),
                                         Beneficiary.last_activity_at < inactive_before)):
        reasons.setdefault(beneficiary_id, "inactive")
    references: dict[int, list[str]] = {}
    for beneficiary_id, reference in session.execute(
            select(Sheet.beneficiary_id, Sheet.reference)
            .where(Sheet.beneficiary_id.in_(reasons)).order_by(Sheet.reference)):
        references.setdefault(beneficiary_id, []).append(reference)
    return [DuePerson(b, reasons[b], tuple(references.get(b, ()))) for b in sorted(reasons)]


def due_dossiers(session: Session, policy: Policy, now: datetime) -> list[int]:
    """Dossiers de séance of sessions held more than ``closed_months`` ago."""
    return list(session.scalars(
        select(GeneratedDocument.id).join(Meeting, Meeting.id == GeneratedDocument.meeting_id)
        .where(GeneratedDocument.kind == "dossier",
               Meeting.starts_at < months_ago(now, policy.closed_months))
        .order_by(GeneratedDocument.id)))


def purge_person(session: Session, keyring: KeyRing, actor: audit.Actor, person: DuePerson,
                 now: datetime) -> None:
    """Crypto-shred one person: their data keys first, then every ciphertext and index."""
    beneficiary = session.get(Beneficiary, person.beneficiary_id)
    sheet_ids = select(Sheet.id).where(Sheet.beneficiary_id == beneficiary.id)
    stashes = list(session.scalars(select(FormStash.uuid).where(FormStash.sheet_id.in_(sheet_ids))))
    documents = list(session.scalars(select(GeneratedDocument.id)
                                     .where(GeneratedDocument.sheet_id.in_(sheet_ids))))
    session.execute(delete(RecordKey).where(RecordKey.record_uuid.in_([beneficiary.uuid,
                                                                       *stashes])))
    session.execute(delete(FormStash).where(FormStash.sheet_id.in_(sheet_ids)))
    _delete_documents(session, documents)
    session.execute(delete(DocumentJob).where(DocumentJob.sheet_id.in_(sheet_ids)))
    session.execute(delete(IdentityRecord).where(IdentityRecord.beneficiary_id == beneficiary.id))
    session.execute(update(Sheet).where(Sheet.beneficiary_id == beneficiary.id)
                    .values(situation_data=None, sensitive_data=None, referent_data=None))
    session.execute(update(SheetEvent).where(SheetEvent.sheet_id.in_(sheet_ids))
                    .values(comment=None))
    decision_ids = select(Decision.id).where(Decision.sheet_id.in_(sheet_ids))
    session.execute(update(Decision).where(Decision.id.in_(decision_ids))
                    .values(motivation=None))
    session.execute(update(DecisionAction).where(DecisionAction.decision_id.in_(decision_ids))
                    .values(label=None))
    session.execute(update(FormalDecision).where(FormalDecision.decision_id.in_(decision_ids))
                    .values(detail=None))
    session.execute(update(AvisRevision).where(AvisRevision.decision_id.in_(decision_ids))
                    .values(previous=None))
    session.execute(update(GlobalSupport).where(GlobalSupport.beneficiary_id == beneficiary.id)
                    .values(diagnostic_categories=None))
    beneficiary.purged_at = now
    session.flush()
    audit.record(session, keyring, actor, "purge", object_type="beneficiaries",
                 object_ids=[beneficiary.id],
                 fields=["record_keys", "identity_records", "sheets", "generated_documents"],
                 purpose=f"rétention : {REASONS[person.reason]}")


def purge_dossiers(session: Session, keyring: KeyRing, actor: audit.Actor,
                   document_ids: list[int]) -> None:
    """Delete old dossiers de séance with their own data keys."""
    if not document_ids:
        return
    _delete_documents(session, document_ids)
    audit.record(session, keyring, actor, "purge", object_type="generated_documents",
                 object_ids=document_ids, purpose="rétention : dossiers de séance")


def _delete_documents(session: Session, document_ids: list[int]) -> None:
    owners = list(session.scalars(select(GeneratedDocument.uuid)
                                  .where(GeneratedDocument.id.in_(document_ids))))
    session.execute(delete(RecordKey).where(RecordKey.record_uuid.in_(owners)))
    session.execute(delete(DocumentJob).where(DocumentJob.document_id.in_(document_ids)))
    session.execute(delete(GeneratedDocument).where(GeneratedDocument.id.in_(document_ids)))


def preview(session: Session, policy: Policy, now: datetime | None = None) -> Report:
    """What a run would purge now (ids, references and counts only); changes nothing."""
    now = now or utcnow()
    report = Report(True, due_people(session, policy, now), due_dossiers(session, policy, now))
    report.audit_rows = session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.at < months_ago(now, policy.audit_months)))
    return report


def run(session: Session, keyring: KeyRing, actor: audit.Actor, policy: Policy, *,
        now: datetime | None = None, dry_run: bool = False) -> Report:
    """Purge (or, dry run, list) everything past its retention; the caller commits."""
    now = now or utcnow()
    if dry_run:
        return preview(session, policy, now)
    report = Report(False, due_people(session, policy, now), due_dossiers(session, policy, now))
    audit_before = months_ago(now, policy.audit_months)
    for person in report.people:
        purge_person(session, keyring, actor, person, now)
    purge_dossiers(session, keyring, actor, report.dossier_ids)
    # Each purge above and the audit purge write their own audit row.
    report.audit_rows = audit.purge_before(session, keyring, actor, audit_before)
    return report


DAILY = timedelta(days=1)


def claim_daily_run(session: Session, task: str, now: datetime | None = None) -> bool:
    """True for the one process that may run ``task`` now (at most once a day across every
    worker): a compare-and-swap on its last run time, committed at once."""
    now = now or utcnow()
    claimed = session.execute(update(MaintenanceRun).where(
        MaintenanceRun.task == task, MaintenanceRun.last_run_at <= now - DAILY)
        .values(last_run_at=now)).rowcount == 1
    if not claimed and session.get(MaintenanceRun, task) is None:
        session.add(MaintenanceRun(task=task, last_run_at=now))
        try:
            session.flush()
            claimed = True
        except IntegrityError:  # another worker inserted it first
            session.rollback()
            return False
    session.commit()
    return claimed
