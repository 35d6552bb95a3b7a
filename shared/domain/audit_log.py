"""The audit trail as the DPO reads it: filtered, paginated, exported. Ids only, no values."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from shared import audit_checkpoint
from shared.db import paris_to_utc, utc_to_paris
from shared.domain import audit, meetings, sheet_workflow
from shared.encrypted import Vault
from shared.models import AuditEvent, GeneratedDocument, IdentityRecord, Sheet, User

PAGE_SIZE = 50

# What each recorded action means, for the DPO (the code stays in the CSV export).
ACTION_LABELS = {
    "access_export": "Droit d'accès : export remis",
    "action_done": "Préconisation marquée réalisée",
    "archive_downloaded": "Archive de séance téléchargée",
    "audit_checkpoint_exported": "Point de contrôle du journal exporté",
    "audit_exported": "Journal d'audit exporté",
    "audit_purged": "Journal d'audit : lignes anciennes purgées",
    "audit_reanchored": "Journal d'audit : ré-ancrage par un administrateur",
    "avis_correction": "Avis corrigé avant signature du PV",
    "avis_erratum": "Avis modifié par erratum (nouveau PV à viser)",
    "circonscription_saved": "Circonscription enregistrée",
    "decrypt": "Identité consultée (déchiffrement)",
    "demo_seeded": "Données de démonstration créées",
    "document_downloaded": "Document téléchargé",
    "document_exported": "Document exporté (ligne de commande)",
    "document_generated": "Document généré",
    "document_job_retried": "Génération de document relancée (administrateur)",
    "document_requested": "Document demandé",
    "formal_decision_recorded": "Décision formelle enregistrée",
    "guard_overridden": "Alerte d'identification outrepassée",
    "identity_differences_resolved": "Identité : valeurs enregistrées gardées ou mises à jour",
    "identity_guard_refused": "Texte de séance refusé : il contenait l'identité de la personne",
    "icag_entree": "Accompagnement global : entrée enregistrée",
    "icag_renouvellement": "Accompagnement global : renouvellement enregistré",
    "icag_sortie": "Accompagnement global : sortie enregistrée",
    "integrity_check": "Vérification d'intégrité",
    "integrity_failure": "Échec de vérification d'intégrité",
    "job_refused": "Tâche refusée par le générateur",
    "key_added": "Clé : version ajoutée",
    "key_deep_reencrypt": "Clé : rechiffrement complet d'une personne",
    "key_promoted": "Clé : version promue",
    "key_retired": "Clé : version retirée",
    "key_rotation_done": "Clé : rotation terminée",
    "key_rotation_incomplete": "Clé : rotation inachevée (fiches indéchiffrables)",
    "key_rotation_started": "Clé : rotation lancée",
    "login": "Connexion",
    "login_failed": "Connexion refusée",
    "meeting_agenda_reordered": "Séance : ordre du jour réordonné",
    "meeting_answers": "Séance : réponses aux convocations",
    "meeting_attendance": "Séance : présences",
    "meeting_avis_recorded": "Séance : avis enregistré",
    "meeting_created": "Séance créée",
    "meeting_item_added": "Séance : point ajouté",
    "meeting_item_removed": "Séance : point retiré",
    "meeting_same_person_inscribed": "Séance : deuxième fiche de la même personne inscrite",
    "meeting_partnership_recorded": "Séance : compte rendu d'un point partenarial",
    "meeting_sheet_adjourned": "Séance : situation ajournée",
    "meeting_sheet_inscribed": "Séance : situation inscrite",
    "member_saved": "Membre de l'instance enregistré",
    "minutes_visa": "Visa du procès-verbal",
    "minutes_correction_requested": "Demande de correction du procès-verbal",
    "notification_preferences": "Préférences de courriel",
    "notification_retried": "Courriel renvoyé",
    "partnership_follow_up_done": "Suivi d'un point partenarial marqué fait",
    "password_changed": "Mot de passe changé",
    "password_reset": "Mot de passe réinitialisé",
    "purge": "Purge (durée de conservation)",
    "recovery_code_used": "Code de secours du second facteur utilisé",
    "reference_saved": "Référentiel enregistré",
    "schedule_saved": "Calendrier enregistré",
    "screening_dismissed": "Texte de séance : élément écarté avec un motif",
    "second_factor_enrolled": "Second facteur activé",
    "second_factor_reset": "Second facteur réinitialisé",
    "sheet_created": "Fiche créée",
    "sheet_saved": "Fiche enregistrée",
    "structure_saved": "Structure enregistrée",
    "template_activated": "Modèle activé",
    "template_deactivated": "Modèle désactivé",
    "template_downloaded": "Modèle téléchargé",
    "template_rejected": "Modèle refusé",
    "template_uploaded": "Modèle déposé",
    "user_activated": "Compte réactivé",
    "user_created": "Compte créé",
    "user_deactivated": "Compte désactivé",
}


# What each row is about, for the DPO (the table's name stays in the CSV export).
OBJECT_LABELS = {
    "agenda_items": "point d'ordre du jour",
    "avis_revisions": "révision d'avis",
    "beneficiaries": "personne (pseudonyme)",
    "circonscriptions": "circonscription",
    "decision_actions": "préconisation",
    "decisions": "avis",
    "document_jobs": "génération de document",
    "form_stashes": "saisie conservée après expiration de session",
    "formal_decisions": "décision formelle",
    "generated_documents": "document",
    "global_support_steps": "étape d'accompagnement global",
    "global_supports": "accompagnement global",
    "identity_records": "identité",
    "key_rotations": "rotation de clés",
    "key_versions": "version de clé",
    "meeting_members": "membre convoqué",
    "meeting_schedules": "calendrier",
    "meetings": "séance",
    "members": "membre de l'instance",
    "minutes_visas": "visa du procès-verbal",
    "notification_preferences": "préférences de courriel",
    "notifications": "courriel",
    "reference_items": "référentiel",
    "sheet_events": "historique de fiche",
    "sheets": "fiche",
    "structures": "structure",
    "template_versions": "modèle de document",
    "users": "compte",
}
# Encrypted columns named in the "fields" of a decryption row (the others are field names of
# the identity: nom, prenom… already French).
FIELD_LABELS = {
    "situation_data": "situation",
    "sensitive_data": "détails sensibles",
    "referent_data": "coordonnées du référent",
    "comment": "commentaire",
    "motivation": "motivation",
    "label": "libellé",
    "payload": "saisie conservée",
    "body": "contenu",
    "pdf_body": "contenu PDF",
}
# A reveal's purpose names the sheet event holding its reason (the reason itself may
# describe the case, so it is sealed in the sheet's history, not written here).
_REASON_EVENT = re.compile(r"\(motif : événement (\d+)\)")


def object_label(table: str) -> str:
    return OBJECT_LABELS.get(table, table)


def fields_label(fields: str) -> str:
    return ", ".join(FIELD_LABELS.get(name, name.replace("_", " "))
                     for name in fields.split(",") if name)


def purpose_label(purpose: str) -> str:
    return _REASON_EVENT.sub(r"(motif écrit dans l'historique de la fiche, événement n° \1)",
                             purpose)


def action_label(code: str) -> str:
    """The French label of an action code; a session's or a sheet's step by its transition;
    the code itself when it has none."""
    if code in ACTION_LABELS:
        return ACTION_LABELS[code]
    for prefix, subject, transitions in (("meeting_", "Séance", meetings.TRANSITIONS),
                                         ("sheet_", "Fiche", sheet_workflow.TRANSITIONS)):
        step = transitions.get(code.removeprefix(prefix)) if code.startswith(prefix) else None
        if step is not None:
            return f"{subject} : {step.label}"
    return code


@dataclass(frozen=True)
class Filters:
    user_id: int | None = None
    reference: str = ""  # a sheet reference (ICL-…): the ids it maps to
    action: str = ""
    since: date | None = None
    until: date | None = None  # inclusive


def reference_ids(session: Session, reference: str) -> dict[str, list[int]]:
    """The records a sheet reference stands for, by table: the sheet, its person, their
    identity records and the sheet's own documents. Empty when the reference is unknown."""
    sheet = session.scalar(select(Sheet).where(Sheet.reference == reference.strip().upper()))
    if sheet is None:
        return {}
    return {
        "sheets": [sheet.id],
        "beneficiaries": [sheet.beneficiary_id],
        "identity_records": list(session.scalars(select(IdentityRecord.id).where(
            IdentityRecord.beneficiary_id == sheet.beneficiary_id))),
        "generated_documents": list(session.scalars(select(GeneratedDocument.id).where(
            GeneratedDocument.sheet_id == sheet.id))),
    }


def _mentions(ids: Iterable[int]):
    """Rows whose comma-separated object_ids list holds one of ``ids``."""
    column = AuditEvent.object_ids
    return or_(*(or_(column == str(i), column.like(f"{i},%"), column.like(f"%,{i}"),
                     column.like(f"%,{i},%")) for i in ids))


def _query(session: Session, filters: Filters) -> Select | None:
    query = select(AuditEvent)
    if filters.user_id:
        query = query.where(AuditEvent.actor_id == filters.user_id)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    # The days are Paris days, as the page and the export show the times.
    if filters.since:
        query = query.where(AuditEvent.at >= paris_to_utc(datetime.combine(filters.since,
                                                                           time())))
    if filters.until:
        query = query.where(AuditEvent.at < paris_to_utc(datetime.combine(
            filters.until + timedelta(days=1), time())))
    if filters.reference:
        ids = {table: found for table, found in reference_ids(session, filters.reference).items()
               if found}
        if not ids:
            return None
        query = query.where(or_(*(and_(AuditEvent.object_type == table, _mentions(found))
                                  for table, found in ids.items())))
    return query


def search(session: Session, filters: Filters, page: int = 1,
           page_size: int = PAGE_SIZE) -> tuple[list[AuditEvent], int]:
    """One page of matching rows, newest first, and the total count."""
    query = _query(session, filters)
    if query is None:
        return [], 0
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(AuditEvent.id.desc())
                           .offset((max(page, 1) - 1) * page_size).limit(page_size)).all()
    return list(rows), total


def actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def actor_names(session: Session, rows: Iterable[AuditEvent]) -> dict[int, str]:
    """Names of the professionals who acted (accounts, not beneficiaries)."""
    ids = {r.actor_id for r in rows if r.actor_id is not None}
    return dict(session.execute(select(User.id, User.full_name).where(User.id.in_(ids))).all())


CSV_HEADER = ["N°", "Date (heure de Paris)", "Utilisateur", "Compte", "Action", "Objet",
              "Identifiants", "Champs", "Finalité"]


def export_csv(session: Session, vault: Vault, filters: Filters) -> tuple[str, int]:
    """Every matching row, oldest first, as CSV for a spreadsheet (';', UTF-8 BOM); the
    export is audited (``audit_exported``) with its count and filters (ids and codes)."""
    query = _query(session, filters)
    rows = list(session.scalars(query.order_by(AuditEvent.id))) if query is not None else []
    names = actor_names(session, rows)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow([row.id, utc_to_paris(row.at).isoformat(sep=" ", timespec="seconds"),
                         row.actor_id or "", names.get(row.actor_id, row.actor_label),
                         row.action, row.object_type, row.object_ids, row.fields, row.purpose])
    audit.record(session, vault.keyring, vault.actor, "audit_exported",
                 object_type="audit_events",
                 purpose=f"{len(rows)} ligne(s) ; filtres : {_describe(filters)}")
    return "\ufeff" + out.getvalue(), len(rows)


def _describe(filters: Filters) -> str:
    """The filters as ids and codes only (a reference is pseudonymous)."""
    parts = [f"{name}={value}" for name, value in vars(filters).items() if value]
    return ", ".join(parts) or "aucun"


def export_checkpoint(session: Session, vault: Vault) -> audit_checkpoint.Checkpoint:
    """A signed checkpoint of the chain's head for the DPO to keep outside (it reveals rows
    deleted later); the rows committed until now are sealed first, so that it covers them.
    Its export is audited (``audit_checkpoint_exported``), after it."""
    audit.seal(session, vault.keyring)
    checkpoint = audit_checkpoint.take(session, vault.keyring)
    audit.record(session, vault.keyring, vault.actor, "audit_checkpoint_exported",
                 object_type="audit_events", object_ids=[checkpoint.seq])
    return checkpoint
