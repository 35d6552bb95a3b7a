"""Le dossier de séance: the agenda, one pseudonymised fiche per situation from an explicit
allowlist of the sheet's fields, and the annex of open préconisations."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from generator.contexts.agenda import agenda_parts, open_recommendations
from generator.contexts.common import archive_version, numbered, sheet_items
from generator.contexts.formatting import clean, french_typography, iso_to_short, slot_time
from shared.domain.reference import reference_labels
from shared.domain.sheets import read_values_many, sensitive_details_shared
from shared.encrypted import Vault
from shared.models import AgendaItem, Meeting, Sheet
from shared.models.meeting import ICAG_KINDS
from shared.protected import SENSITIVE, SITUATIONAL
from shared.sheet_schema import FIELDS_BY_NAME, INFORMEE, INTENSITE, POSITION

SENSITIVE_PURPOSE = "dossier de séance"
SHEET_COLUMNS = ("situation_data", "sensitive_data")  # never "referent_data" (identity chain)

# -- allowlists of the situation sheet (shared/sheet_schema.py) -------------------------------
# Situational fields printed on the pseudonymised fiche, in this order ("sexe" is left out:
# useful for statistics only, docs/domain.md).
SITUATION_FIELDS = (
    "situation_familiale", "enfants_a_charge", "age_plus_jeune", "anciennete_rsa",
    "orientation", "debut_accompagnement", "nombre_referents", "contrat", "contrat_signe",
    "contrat_debut", "contrat_fin", "duree_activite", "inscription_ft", "radiation_date",
    "formation", "experience", "logement",
)
# Sensitive details: printed only when the referent chose to share them (partager_sensible).
SENSITIVE_DETAIL_FIELDS = ("motif_duree", "situation_administrative", "surendettement",
                           "sante_detail", "justice_detail")


def _check_allowlists() -> None:
    """Refuse to start if the schema moved a field to another class (e.g. identifying)."""
    for name in (*SITUATION_FIELDS, "parcours", "question", "proposition",
                 "motifs_secondaires", "actions", "partager_sensible", "personne_informee",
                 "date_information", "position_personne", "commentaire_personne"):
        if FIELDS_BY_NAME[name].data_class != SITUATIONAL:
            raise RuntimeError(f"sheet field {name} is no longer situational")
    for name in (*SENSITIVE_DETAIL_FIELDS, "freins"):
        if FIELDS_BY_NAME[name].data_class != SENSITIVE:
            raise RuntimeError(f"sheet field {name} is no longer sensitive")


_check_allowlists()


def _format_value(name: str, value: Any, labels: dict[str, dict[str, str]]) -> str:
    spec = FIELDS_BY_NAME[name]
    choices = spec.choices if spec.choices is not None else labels.get(spec.ref or "", {})
    if spec.kind in ("choice", "yesno"):
        return clean(choices.get(str(value), value))
    if spec.kind == "multichoice":
        return clean(", ".join(choices.get(str(v), str(v)) for v in value))
    if spec.kind == "date":
        return iso_to_short(value)
    return clean(value)


def _empty(value: Any) -> bool:
    return value in ("", None, [], {})


def _fiche(item: AgendaItem, number: str, values: dict[str, Any],
           labels: dict[str, dict[str, str]], passages: list[dict]) -> dict:
    """The pseudonymised fiche of one situation, from an explicit allowlist of fields."""
    sheet = item.sheet
    shared = sensitive_details_shared(values)
    freins = values.get("freins") or {}
    frein_labels = labels.get("frein", {})
    ordered = [code for code in frein_labels if code in freins] + \
        sorted(code for code in freins if code not in frein_labels)
    informed = INFORMEE.get(values.get("personne_informee") or "", "")
    if informed and values.get("date_information"):
        informed = f"{informed}, le {iso_to_short(values['date_information'])}"
    part = (f"ICAG – {ICAG_KINDS.get(item.icag_kind, '')}" if item.part == "icag"
            else "Étude de situation")
    return {
        "number": number,
        "time_slot": slot_time(item.time_slot),
        "part": part,
        "reference": clean(sheet.reference),
        "pseudonym": clean(sheet.beneficiary.pseudonym),
        "structure": clean(sheet.structure.name),
        "structure_type": clean(sheet.structure.type_label),
        "motif": clean(labels["motif"].get(sheet.motif or "", "")),
        "secondary_motifs": _format_value("motifs_secondaires",
                                          values.get("motifs_secondaires") or [], labels),
        "urgent": "Oui" if sheet.urgent else "Non",
        "fields": [{"label": french_typography(FIELDS_BY_NAME[name].label),
                    "value": _format_value(name, values[name], labels)}
                   for name in SITUATION_FIELDS if not _empty(values.get(name))],
        "parcours": clean(values.get("parcours")),
        "actions": [{"action": clean(row.get("action")), "structure": clean(row.get("structure")),
                     "start": iso_to_short(row.get("debut") or ""),
                     "end": iso_to_short(row.get("fin") or ""),
                     "result": clean(row.get("resultat"))}
                    for row in values.get("actions") or []
                    if isinstance(row, dict) and any(not _empty(v) for v in row.values())],
        "freins": [{"label": clean(frein_labels.get(code, code)),
                    "intensity": INTENSITE.get(freins[code], clean(freins[code]))}
                   for code in ordered],
        "sensitive_shared": shared,
        "sensitive": [{"label": french_typography(FIELDS_BY_NAME[name].label),
                       "value": _format_value(name, values[name], labels)}
                      for name in SENSITIVE_DETAIL_FIELDS
                      if shared and not _empty(values.get(name))],
        "question": clean(values.get("question")),
        "proposition": clean(values.get("proposition")),
        "person_informed": clean(informed),
        "person_position": POSITION.get(values.get("position_personne") or "", ""),
        "person_comment": clean(values.get("commentaire_personne")),
        "passages": passages,
    }


def dossier_context(session: Session, vault: Vault, meeting: Meeting, version: int,
                    today: date, sheet: Sheet | None = None) -> dict:
    """Cover page with the numbered copies, the agenda, one pseudonymised fiche per inscribed
    situation, and the annex of open préconisations."""
    labels = reference_labels(session)
    context, passages = agenda_parts(session, vault, meeting, version, today, labels)
    numbers = numbered(meeting)
    items = sheet_items(meeting, "situation") + sheet_items(meeting, "icag")
    # Sensitive column opened for the freins categories (always printed); its details are
    # copied only when the referent chose to share them (see _fiche). One audit row for all.
    opened = read_values_many(vault, [i.sheet for i in items], purpose=SENSITIVE_PURPOSE,
                              columns=SHEET_COLUMNS)
    fiches = [_fiche(item, numbers[item.id], values, labels,
                     passages.get(item.sheet.beneficiary_id, []))
              for item, values in zip(items, opened, strict=True)]
    copies = [{"number": str(n)} | row for n, row in enumerate(context["members"], start=1)]
    return context | {
        "version": archive_version(meeting, "dossier", version),
        "copies": copies,
        "sheets": fiches,
        "open_recommendations": open_recommendations(session, vault, meeting),
    }
