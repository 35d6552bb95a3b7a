"""Right of access (RGPD art. 15): everything a structure holds about one person, as a
readable Word document and a JSON file in one zip.

Built in the intake process (it holds the identity chain; the worker never does). Every
decryption is audited with the purpose "droit d'accès". A structure exports its own record
of the person and the sheets it filed: other structures' records are theirs to answer for.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from typing import Any

from docx import Document
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.domain import audit
from shared.domain.beneficiaries import identity_record
from shared.domain.sheets import read_values_many
from shared.encrypted import Vault
from shared.models import AvisRevision, Beneficiary, Decision, FormalDecision, GlobalSupport, Sheet
from shared.models.meeting import FORMAL_OUTCOMES, REVISION_KINDS
from shared.models.sheet import SHEET_STATES
from shared.protected import IDENTITY_FIELDS
from shared.sheet_schema import FIELDS

PURPOSE = "droit d'accès"


def export(session: Session, vault: Vault, beneficiary: Beneficiary, structure_id: int,
           identity_labels: dict[str, str]) -> bytes:
    """The right-of-access zip of what ``structure_id`` holds about the person. The export
    is audited first (``access_export``); each decryption inside with its purpose."""
    audit.record(session, vault.keyring, vault.actor, "access_export",
                 object_type="beneficiaries", object_ids=[beneficiary.id], purpose=PURPOSE)
    return build_zip(collect(session, vault, beneficiary, structure_id), identity_labels)


def collect(session: Session, vault: Vault, beneficiary: Beneficiary,
            structure_id: int) -> dict[str, Any]:
    """Plain values: the structure's identity record and its sheets with their history."""
    record = identity_record(session, beneficiary, structure_id)
    identity = {}
    if record is not None:
        opened = vault.open_many([record], IDENTITY_FIELDS, purpose=PURPOSE)[0]
        identity = {k: (v.reveal() if v else "") for k, v in opened.items()}
    sheets = list(session.scalars(select(Sheet).where(Sheet.beneficiary_id == beneficiary.id,
                                                      Sheet.structure_id == structure_id)
                                  .order_by(Sheet.id)))
    values = read_values_many(vault, sheets, purpose=PURPOSE)
    return {
        "pseudonyme": beneficiary.pseudonym,
        "identite": identity,
        "fiches": [_sheet(session, vault, sheet, content) for sheet, content
                   in zip(sheets, values, strict=True)],
        "genere_le": datetime.now().isoformat(timespec="seconds"),
    }


def _reveal(secret) -> str:
    return secret.reveal() if secret else ""


def _sheet(session: Session, vault: Vault, sheet: Sheet, content: dict[str, Any]) -> dict:
    decisions = session.scalars(select(Decision).where(Decision.sheet_id == sheet.id)
                                .order_by(Decision.id)).all()
    return {
        "reference": sheet.reference,
        "etat": SHEET_STATES.get(sheet.status, sheet.status),
        "creee_le": sheet.created_at.isoformat(timespec="seconds"),
        "contenu": {f.label: content.get(f.name) for f in FIELDS if f.name in content},
        "historique": [{"date": e.at.isoformat(timespec="seconds"), "etape": e.action,
                        "commentaire": _reveal(vault.open(e, "comment"))} for e in sheet.events],
        "avis": [{"date": d.created_at.isoformat(timespec="seconds"), "avis": d.avis,
                  "motivation": _reveal(vault.open(d, "motivation")),
                  "preconisations": [_reveal(vault.open(a, "label")) for a in d.actions],
                  "decision_formelle": _formal_decision(vault, d.formal) if d.formal else None,
                  "versions_precedentes": _earlier_versions(vault, d.revisions)}
                 for d in decisions],
        "accompagnement_global": [_global_support(vault, g) for g in session.scalars(
            select(GlobalSupport).where(GlobalSupport.sheet_id == sheet.id)
            .order_by(GlobalSupport.id))],
    }


def _formal_decision(vault: Vault, formal: FormalDecision) -> dict:
    return {"decision": FORMAL_OUTCOMES.get(formal.outcome, formal.outcome),
            "date": formal.decided_on.isoformat(), "auteur": formal.author,
            "precisions": _reveal(vault.open(formal, "detail", purpose=PURPOSE))}


def _earlier_versions(vault: Vault, revisions: list[AvisRevision]) -> list[dict]:
    """Each version an avis had before a correction or an erratum, oldest first."""
    opened = vault.open_many(revisions, ["previous"], purpose=PURPOSE) if revisions else []
    versions = []
    for revision, secret in zip(revisions, opened, strict=True):
        previous = json.loads(secret["previous"].reveal()) if secret["previous"] else {}
        versions.append({
            "changement": REVISION_KINDS.get(revision.kind, revision.kind),
            "date": revision.revised_at.isoformat(timespec="seconds"),
            "avis": revision.avis,
            "motivation": previous.get("motivation", ""),
            "preconisations": [action["label"] for action in previous.get("actions", [])],
            "motif_du_changement": previous.get("reason", "")})
    return versions


def _global_support(vault: Vault, support: GlobalSupport) -> dict:
    secret = vault.open(support, "diagnostic_categories", purpose=PURPOSE)
    return {"debut": support.started_on.isoformat(), "terme": support.term_ends_on.isoformat(),
            "fin": support.ended_on.isoformat() if support.ended_on else "",
            "motif_de_sortie": support.exit_reason_label,
            "diagnostic_partage": {"date": support.diagnostic_on.isoformat(),
                                   "structure": support.diagnostic_structure.name,
                                   "freins": json.loads(secret.reveal()) if secret else []}}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} : {_text(v)}" for k, v in value.items() if v)
    return "" if value is None else str(value)


def render_docx(data: dict[str, Any], identity_labels: dict[str, str]) -> bytes:
    """The readable document, in French."""
    doc = Document()
    doc.add_heading("Données vous concernant", 0)
    doc.add_paragraph("Réponse à votre demande d'accès (article 15 du RGPD). Ce document "
                      "reprend toutes les informations que notre structure détient sur vous "
                      f"dans l'application ICL-I, au {data['genere_le'][:10]}.")
    doc.add_heading("Identité", 1)
    table = doc.add_table(rows=0, cols=2)
    for name, value in data["identite"].items():
        row = table.add_row().cells
        row[0].text, row[1].text = identity_labels.get(name, name), value
    doc.add_paragraph(f"Pseudonyme utilisé devant l'instance : {data['pseudonyme']}")
    for sheet in data["fiches"]:
        doc.add_heading(f"Fiche {sheet['reference']} ({sheet['etat']})", 1)
        for label, value in sheet["contenu"].items():
            if _text(value):
                doc.add_paragraph(f"{label} : {_text(value)}")
        if sheet["historique"]:
            doc.add_heading("Historique", 2)
            for event in sheet["historique"]:
                doc.add_paragraph(f"{event['date'][:10]} – {event['etape']}"
                                  + (f" : {event['commentaire']}" if event["commentaire"] else ""),
                                  style="List Bullet")
        for support in sheet["accompagnement_global"]:
            doc.add_heading(f"Accompagnement global depuis le {support['debut']}", 2)
            for label, key in (("Terme", "terme"), ("Fin", "fin"),
                               ("Motif de sortie", "motif_de_sortie")):
                if support[key]:
                    doc.add_paragraph(f"{label} : {support[key]}")
            doc.add_paragraph(f"Diagnostic partagé : {_text(support['diagnostic_partage'])}")
        for avis in sheet["avis"]:
            doc.add_heading(f"Avis de l'instance du {avis['date'][:10]}", 2)
            doc.add_paragraph(f"{avis['avis']} – {avis['motivation']}")
            for action in avis["preconisations"]:
                doc.add_paragraph(action, style="List Bullet")
            formal = avis["decision_formelle"]
            if formal:
                doc.add_paragraph(f"Décision formelle du {formal['date']} : {formal['decision']}"
                                  f", par {formal['auteur']}"
                                  + (f" – {formal['precisions']}" if formal["precisions"] else ""))
            for earlier in avis["versions_precedentes"]:
                doc.add_heading(f"Version précédente de l'avis ({earlier['changement']} du "
                                f"{earlier['date'][:10]})", 3)
                doc.add_paragraph(f"{earlier['avis']} – {earlier['motivation']}")
                for action in earlier["preconisations"]:
                    doc.add_paragraph(action, style="List Bullet")
                doc.add_paragraph(f"Motif du changement : {earlier['motif_du_changement']}")
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def build_zip(data: dict[str, Any], identity_labels: dict[str, str]) -> bytes:
    """One zip: the Word document and the same data as JSON."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("donnees-personnelles.docx", render_docx(data, identity_labels))
        archive.writestr("donnees-personnelles.json",
                         json.dumps(data, ensure_ascii=False, indent=2, default=str))
    return buffer.getvalue()
