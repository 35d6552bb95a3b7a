"""Database rows -> plain, formatted, pseudonymised dicts, one builder per document kind.

Each builder copies an explicit allowlist of fields: a template never sees a model, and
nothing of the identity chain can reach it (this process does not even hold that chain).
Every builder has the same signature::

    builder(session, vault, meeting, version, today, sheet=None) -> dict

(``sheet`` only for the per-situation fiche retour), and ``BUILDERS[kind] = (builder, KEYS)``
where KEYS is the exact set of top-level variables of the kind's template. Values are strings
(already formatted: French dates, "14 h 30", JJ/MM/AAAA), lists of such dicts, and a few
booleans that only steer the template's conditions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from shared.domain import documents
from shared.domain.icag import steps_of_meeting
from shared.domain.meetings import attendance_counts, open_actions
from shared.domain.reference import reference_labels
from shared.domain.sheets import read_values_many
from shared.encrypted import Vault
from shared.models import (
    AgendaItem,
    Decision,
    DecisionAction,
    Meeting,
    MeetingMember,
    RoleAssignment,
    Sheet,
    User,
)
from shared.models.document import INSTITUTIONS
from shared.models.icag import EXIT_REASONS
from shared.models.meeting import (
    ANSWERS,
    ATTENDANCE,
    FORMAL_DECISION,
    FORMAL_OUTCOMES,
    ICAG_KINDS,
    MEMBER_KINDS,
)
from shared.protected import SENSITIVE, SITUATIONAL
from shared.sheet_schema import (
    FIELDS_BY_NAME,
    INFORMEE,
    INTENSITE,
    POSITION,
)
from shared.text import FRENCH_MONTHS

_DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
# XML 1.0 forbids most control characters (they would make the .docx unreadable); C1 controls
# and lone surrogates (not encodable) go too. Tab and newline stay: docxtpl lays them out.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_PARIS = "Europe/Paris"

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

SIGNATORIES = (
    ("departement", "Pour le Département : le DGA ou son délégataire"),
    ("france_travail", "Pour France Travail : la Directrice territoriale ou sa délégataire"),
)
if {code for code, _label in SIGNATORIES} != set(INSTITUTIONS):
    raise RuntimeError("SIGNATORIES must name every institution of INSTITUTIONS")

# -- keys per kind ----------------------------------------------------------------------------
BASE_KEYS = {"circonscription", "meeting_date", "version", "generated_on"}
SESSION_KEYS = BASE_KEYS | {"meeting_time", "place", "facilitators"}
AGENDA_KEYS = SESSION_KEYS | {"video_link", "partnership", "situations", "icag", "followups",
                              "members"}
DOSSIER_KEYS = AGENDA_KEYS | {"copies", "sheets", "open_recommendations"}
ATTENDANCE_KEYS = SESSION_KEYS | {"members", "presenters"}
MINUTES_KEYS = SESSION_KEYS | {"attendance", "attendance_totals", "motif_counts",
                               "situations_examined", "situations_adjourned", "partnership",
                               "situations", "icag", "icag_steps", "visas"}
INFORMATION_KEYS = {"reference", "structure", "circonscription", "motif", "retention",
                    "dpo_contact", "version", "generated_on"}
FEEDBACK_KEYS = BASE_KEYS | {"reference", "pseudonym", "structure", "motif", "avis",
                             "adjourned", "motivation", "actions", "next_passage",
                             "formal_decision", "information", "contact"}


# -- formatting -------------------------------------------------------------------------------
def clean(text: Any) -> str:
    """Text safe for a .docx: no control characters (tab and newline kept)."""
    return _CONTROL.sub("", "" if text is None else str(text))


def french_date(day: date) -> str:
    """« mardi 15 décembre 2026 », « lundi 1er février 2027 »."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{_DAYS[day.weekday()]} {number} {FRENCH_MONTHS[day.month - 1]} {day.year}"


def short_date(day: date | None) -> str:
    return f"{day:%d/%m/%Y}" if day else ""


def french_time(moment: datetime) -> str:
    return f"{moment.hour} h {moment.minute:02d}"


def slot_time(slot: str | None) -> str:
    """« 14:30 » -> « 14 h 30 »; anything else cleaned as it is."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", slot or "")
    return f"{int(match[1])} h {match[2]}" if match else clean(slot)


def _iso_to_short(value: Any) -> str:
    try:
        return short_date(date.fromisoformat(str(value)))
    except ValueError:
        return clean(value)


def _local(moment: datetime) -> tuple[datetime, str]:
    """A naive UTC timestamp in Paris time, or in UTC (said so) without time zone data."""
    aware = moment.replace(tzinfo=UTC)
    try:
        return aware.astimezone(ZoneInfo(_PARIS)), ""
    except ZoneInfoNotFoundError:
        return aware, " (UTC)"


def _plural(count: int, singular: str, plural: str) -> str:
    return singular if count == 1 else plural


def _numbers(numbers: list[str]) -> str:
    """["1"] -> "n° 1"; ["1", "3", "4"] -> "n° 1, 3 et 4"."""
    if len(numbers) == 1:
        return f"n° {numbers[0]}"
    return "n° " + ", ".join(numbers[:-1]) + " et " + numbers[-1]


# -- shared pieces ----------------------------------------------------------------------------
def _header(session: Session, meeting: Meeting, version: int, today: date) -> dict:
    return {
        "circonscription": clean(meeting.circonscription.name),
        "meeting_date": french_date(meeting.starts_at.date()),
        "meeting_time": french_time(meeting.starts_at),
        "place": clean(meeting.place),
        "facilitators": clean(", ".join(_facilitator_names(session, meeting))),
        "version": str(version),
        "generated_on": french_date(today),
    }


def _archive_version(meeting: Meeting, kind: str, version: int) -> str:
    """The version as printed; a copy produced after the avis were closed says it is one."""
    if documents.is_archive_copy(meeting, kind):
        return f"{version} (copie d'archive établie après la séance)"
    return str(version)


def _facilitator_names(session: Session, meeting: Meeting) -> list[str]:
    """The chargé·e·s d'animation of the circonscription (professional names only)."""
    return list(session.scalars(
        select(User.full_name).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role == "facilitator",
               RoleAssignment.circonscription_id == meeting.circonscription_id,
               User.active.is_(True))
        .distinct().order_by(User.full_name)))


def _load(session: Session, meeting: Meeting) -> None:
    """Load the agenda's items with their sheets, structures and people in a few queries.
    The meeting holds them from then on (the session's identity map alone would let them go)."""
    session.scalars(
        select(Meeting).where(Meeting.id == meeting.id)
        .options(selectinload(Meeting.items).selectinload(AgendaItem.sheet)
                 .options(selectinload(Sheet.structure), selectinload(Sheet.beneficiary)))
        .execution_options(populate_existing=True)).one()


def _sheet_items(meeting: Meeting, part: str, *, with_adjourned: bool = False
                 ) -> list[AgendaItem]:
    return [i for i in meeting.items if i.part == part and i.sheet is not None
            and (with_adjourned or i.outcome != "ajourne")]


def _numbered(meeting: Meeting) -> dict[int, str]:
    """Situation numbers shared by the agenda, the dossier and the attendance sheet:
    studies of situations first, then ICAG items, in agenda order; adjourned ones left out."""
    items = _sheet_items(meeting, "situation") + _sheet_items(meeting, "icag")
    return {item.id: str(number) for number, item in enumerate(items, start=1)}


def _members(meeting: Meeting) -> list[MeetingMember]:
    return sorted(meeting.members, key=lambda row: (
        row.member.kind != "permanent",
        (row.member.structure.name if row.member.structure else "").casefold(),
        row.member.name.casefold()))


def _member(row: MeetingMember) -> dict:
    member = row.member
    answer = ANSWERS.get(row.answer, "")
    if row.answer == "remplace" and row.replacement:
        answer = f"{answer} {row.replacement}"
    return {"name": clean(member.name),
            "structure": clean(member.structure.name if member.structure else ""),
            "function": clean(member.function),
            "status": MEMBER_KINDS.get(member.kind, clean(member.kind)),
            "answer": clean(answer)}


def _passages(session: Session, meeting: Meeting, sheets: Iterable[Sheet],
              labels: dict[str, dict[str, str]]) -> dict[int, list[dict]]:
    """Earlier passages of each sheet's person (any of their sheets), by beneficiary id:
    date, reference, motif and avis (or « Ajournée »). Cancelled sessions do not count."""
    beneficiary_ids = {sheet.beneficiary_id for sheet in sheets}
    if not beneficiary_ids:
        return {}
    rows = session.execute(
        select(AgendaItem, Meeting.starts_at, Sheet)
        .join(Meeting, AgendaItem.meeting_id == Meeting.id)
        .join(Sheet, AgendaItem.sheet_id == Sheet.id)
        .where(Sheet.beneficiary_id.in_(beneficiary_ids),
               Meeting.starts_at < meeting.starts_at,
               Meeting.state.not_in(("annulee", "reportee")),
               AgendaItem.outcome.in_(("examine", "ajourne")))
        .order_by(Meeting.starts_at, AgendaItem.id)).all()
    decisions = _decisions(session, {(item.meeting_id, item.sheet_id) for item, _at, _s in rows})
    passages: dict[int, list[dict]] = {}
    for item, starts_at, sheet in rows:
        decision = decisions.get((item.meeting_id, item.sheet_id))
        if item.outcome == "ajourne":
            avis = "Ajournée"
        else:
            avis = labels["avis"].get(decision.avis, decision.avis) if decision else ""
        passages.setdefault(sheet.beneficiary_id, []).append({
            "date": short_date(starts_at.date()),
            "reference": clean(sheet.reference),
            "motif": clean(labels["motif"].get(sheet.motif or "", "")),
            "avis": clean(avis),
        })
    return passages


def _decisions(session: Session, pairs: set[tuple[int, int | None]]
               ) -> dict[tuple[int, int], Decision]:
    """The latest decision per (meeting id, sheet id)."""
    meeting_ids = {m for m, _s in pairs}
    if not meeting_ids:
        return {}
    found: dict[tuple[int, int], Decision] = {}
    for decision in session.scalars(
            select(Decision).where(Decision.meeting_id.in_(meeting_ids))
            .options(selectinload(Decision.actions).selectinload(DecisionAction.owner))
            .order_by(Decision.id)):
        if (decision.meeting_id, decision.sheet_id) in pairs:
            found[(decision.meeting_id, decision.sheet_id)] = decision
    return found


def _entry(item: AgendaItem, number: str, labels: dict[str, dict[str, str]],
           passages: list[dict]) -> dict:
    """One situation of the agenda: reference and pseudonym, never an identity."""
    sheet = item.sheet
    pseudonym = sheet.beneficiary.pseudonym
    passage = f"Retour (passage du {passages[-1]['date']})" if passages else "Nouvelle situation"
    return {
        "number": number,
        "time_slot": slot_time(item.time_slot),
        "reference": clean(sheet.reference),
        "pseudonym": clean(pseudonym),
        "label": clean(f"{sheet.reference} – {pseudonym}"),
        "structure": clean(sheet.structure.name),
        "structure_type": clean(sheet.structure.type_label),
        "motif": clean(labels["motif"].get(sheet.motif or "", "")),
        "passage": passage,
        "icag_kind": ICAG_KINDS.get(item.icag_kind, ""),
        "urgent": "Urgente" if sheet.urgent else "",
        "late": "Ajout tardif" if item.late else "",
    }


def _open_recommendations(session: Session, vault: Vault, meeting: Meeting) -> list[dict]:
    """Préconisations of earlier sessions of the circonscription not done yet (by due date)."""
    actions = [a for a in open_actions(session, {meeting.circonscription_id})
               if a.decision.meeting.starts_at < meeting.starts_at]
    opened = vault.open_many(actions, ["label"]) if actions else []
    rows = []
    for action, secret in zip(actions, opened, strict=True):
        if action.due_on is None:
            state = "À réaliser (sans échéance)"
        elif action.due_on < meeting.day:
            state = "Échéance dépassée"
        else:
            state = "En cours"
        label = secret["label"]
        rows.append({
            "reference": clean(action.decision.sheet.reference),
            "session_date": short_date(action.decision.meeting.starts_at.date()),
            "preconisation": clean(label.reveal() if label is not None else ""),
            "porteur": clean(action.owner.name if action.owner else ""),
            "echeance": short_date(action.due_on),
            "state": state,
        })
    return rows


def _agenda(session: Session, vault: Vault, meeting: Meeting, version: int, today: date,
            labels: dict[str, dict[str, str]]) -> tuple[dict, dict[int, list[dict]]]:
    _load(session, meeting)
    numbers = _numbered(meeting)
    sheet_items = _sheet_items(meeting, "situation") + _sheet_items(meeting, "icag")
    passages = _passages(session, meeting, [i.sheet for i in sheet_items], labels)

    def entries(part: str) -> list[dict]:
        return [_entry(i, numbers[i.id], labels, passages.get(i.sheet.beneficiary_id, []))
                for i in _sheet_items(meeting, part)]

    followups = [{k: row[k] for k in ("reference", "session_date", "porteur", "echeance",
                                      "state")}
                 for row in _open_recommendations(session, vault, meeting)]
    context = _header(session, meeting, version, today) | {
        "video_link": clean(meeting.video_link),
        "partnership": [{"title": clean(i.title), "duration": f"{i.duration_minutes} min",
                         "time_slot": slot_time(i.time_slot), "presenter": clean(i.presenter)}
                        for i in meeting.items if i.part == "partenariat"],
        "situations": entries("situation"),
        "icag": entries("icag"),
        "followups": followups,
        "members": [_member(row) for row in _members(meeting)],
    }
    return context, passages


# -- agenda -----------------------------------------------------------------------------------
def agenda_context(session: Session, vault: Vault, meeting: Meeting, version: int,
                   today: date, sheet: Sheet | None = None) -> dict:
    """L'ordre du jour: partnership, situations by reference and pseudonym with their slot,
    ICAG items, open préconisations by reference only, the invited members."""
    context, _passages_by_person = _agenda(session, vault, meeting, version, today,
                                           reference_labels(session))
    return context


# -- dossier de séance ------------------------------------------------------------------------
def _format_value(name: str, value: Any, labels: dict[str, dict[str, str]]) -> str:
    spec = FIELDS_BY_NAME[name]
    choices = spec.choices if spec.choices is not None else labels.get(spec.ref or "", {})
    if spec.kind in ("choice", "yesno"):
        return clean(choices.get(str(value), value))
    if spec.kind == "multichoice":
        return clean(", ".join(choices.get(str(v), str(v)) for v in value))
    if spec.kind == "date":
        return _iso_to_short(value)
    return clean(value)


def _empty(value: Any) -> bool:
    return value in ("", None, [], {})


def _fiche(item: AgendaItem, number: str, values: dict[str, Any],
           labels: dict[str, dict[str, str]], passages: list[dict]) -> dict:
    """The pseudonymised fiche of one situation, from an explicit allowlist of fields."""
    sheet = item.sheet
    shared = values.get("partager_sensible") == "oui"
    freins = values.get("freins") or {}
    frein_labels = labels.get("frein", {})
    ordered = [code for code in frein_labels if code in freins] + \
        sorted(code for code in freins if code not in frein_labels)
    informed = INFORMEE.get(values.get("personne_informee") or "", "")
    if informed and values.get("date_information"):
        informed = f"{informed}, le {_iso_to_short(values['date_information'])}"
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
        "fields": [{"label": FIELDS_BY_NAME[name].label,
                    "value": _format_value(name, values[name], labels)}
                   for name in SITUATION_FIELDS if not _empty(values.get(name))],
        "parcours": clean(values.get("parcours")),
        "actions": [{"action": clean(row.get("action")), "structure": clean(row.get("structure")),
                     "start": _iso_to_short(row.get("debut") or ""),
                     "end": _iso_to_short(row.get("fin") or ""),
                     "result": clean(row.get("resultat"))}
                    for row in values.get("actions") or []
                    if isinstance(row, dict) and any(not _empty(v) for v in row.values())],
        "freins": [{"label": clean(frein_labels.get(code, code)),
                    "intensity": INTENSITE.get(freins[code], clean(freins[code]))}
                   for code in ordered],
        "sensitive_shared": shared,
        "sensitive": [{"label": FIELDS_BY_NAME[name].label,
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
    context, passages = _agenda(session, vault, meeting, version, today, labels)
    numbers = _numbered(meeting)
    items = _sheet_items(meeting, "situation") + _sheet_items(meeting, "icag")
    # Sensitive column opened for the freins categories (always printed); its details are
    # copied only when the referent chose to share them (see _fiche). One audit row for all.
    opened = read_values_many(vault, [i.sheet for i in items], purpose=SENSITIVE_PURPOSE,
                              columns=SHEET_COLUMNS)
    fiches = [_fiche(item, numbers[item.id], values, labels,
                     passages.get(item.sheet.beneficiary_id, []))
              for item, values in zip(items, opened, strict=True)]
    copies = [{"number": str(n)} | row for n, row in enumerate(context["members"], start=1)]
    return context | {
        "version": _archive_version(meeting, "dossier", version),
        "copies": copies,
        "sheets": fiches,
        "open_recommendations": _open_recommendations(session, vault, meeting),
    }


# -- feuille d'émargement ---------------------------------------------------------------------
def attendance_context(session: Session, vault: Vault, meeting: Meeting, version: int,
                       today: date, sheet: Sheet | None = None) -> dict:
    """Invited members, then one line per presenting structure with its situation numbers
    and time slots: never a beneficiary's name, reference or pseudonym."""
    _load(session, meeting)
    numbers = _numbered(meeting)
    by_structure: dict[int, list[AgendaItem]] = {}
    for item in _sheet_items(meeting, "situation") + _sheet_items(meeting, "icag"):
        by_structure.setdefault(item.sheet.structure_id, []).append(item)
    presenters = []
    for items in by_structure.values():
        nums = [numbers[i.id] for i in items]
        word = _plural(len(nums), "la situation", "les situations")
        slots = list(dict.fromkeys(slot_time(i.time_slot) for i in items))
        presenters.append({"structure": clean(items[0].sheet.structure.name),
                           "label": f"Référent·e présentant {word} {_numbers(nums)}",
                           "time_slots": ", ".join(slots)})
    return _header(session, meeting, version, today) | {
        "version": _archive_version(meeting, "attendance", version),
        "members": [_member(row) for row in _members(meeting)],
        "presenters": presenters,
    }


# -- procès-verbal ----------------------------------------------------------------------------
def _actions(decision: Decision | None, opened: dict[int, str]) -> list[dict]:
    if decision is None:
        return []
    return [{"label": clean(opened.get(a.id, "")),
             "porteur": clean(a.owner.name if a.owner else ""),
             "echeance": short_date(a.due_on)} for a in decision.actions]


def _decision_texts(vault: Vault, decisions: Iterable[Decision]) -> tuple[dict[int, str],
                                                                          dict[int, str]]:
    """Decrypted motivations (by decision id) and action labels (by action id)."""
    decisions = list(decisions)
    actions = [a for d in decisions for a in d.actions]
    motivations = {d.id: (s["motivation"].reveal() if s["motivation"] is not None else "")
                   for d, s in zip(decisions, vault.open_many(decisions, ["motivation"]),
                                   strict=True)}
    labels = {a.id: (s["label"].reveal() if s["label"] is not None else "")
              for a, s in zip(actions, vault.open_many(actions, ["label"]), strict=True)}
    return motivations, labels


def _outcome(item: AgendaItem, decision: Decision | None, labels: dict[str, dict[str, str]],
             motivations: dict[int, str], action_labels: dict[int, str]) -> dict:
    """The instance's avis on one situation, by sheet reference only (the PV is archived)."""
    sheet = item.sheet
    adjourned = item.outcome == "ajourne"
    if adjourned:
        outcome = "Ajournée"
    elif decision is not None:
        outcome = "Avis rendu"
    else:
        outcome = "Non examinée"
    return {
        "reference": clean(sheet.reference),
        "time_slot": slot_time(item.time_slot),
        "icag_kind": ICAG_KINDS.get(item.icag_kind, ""),
        "motif": clean(labels["motif"].get(sheet.motif or "", "")),
        "structure": clean(sheet.structure.name),
        "structure_type": clean(sheet.structure.type_label),
        "outcome": outcome,
        "adjourned": adjourned,
        "decided": decision is not None and not adjourned,
        "adjourn_reason": clean(item.adjourn_reason) if adjourned else "",
        "avis": clean(labels["avis"].get(decision.avis, decision.avis)) if decision else "",
        "motivation": clean(motivations.get(decision.id, "")) if decision else "",
        "actions": _actions(decision, action_labels),
        "come_back_on": short_date(decision.come_back_on) if decision else "",
        "formal_decision": (FORMAL_DECISION.get(decision.formal_decision_by, "")
                            if decision else ""),
    }


def _partnership_outcome(item: AgendaItem) -> dict:
    """A partnership item as the minutes record it: presenter, summary, next step."""
    return {"title": clean(item.title), "duration": f"{item.duration_minutes} min",
            "time_slot": slot_time(item.time_slot), "presenter": clean(item.presenter),
            "summary": clean(item.summary), "next_step": clean(item.next_step),
            "follow_up_on": short_date(item.follow_up_on)}


def _icag_steps(session: Session, meeting: Meeting) -> list[dict]:
    """AG entries, renewals and exits recorded at this session, by reference only. The
    diagnostic's freins stay out: sensitive categories are not copied into an archive."""
    steps = steps_of_meeting(session, meeting)
    rows = []
    for item in _sheet_items(meeting, "icag"):
        step = steps.get(item.id)
        if step is None:
            continue
        support = step.support
        diagnostic = (f"{short_date(support.diagnostic_on)} – "
                      f"{support.diagnostic_structure.name}" if step.kind == "entree" else "")
        rows.append({"reference": clean(item.sheet.reference),
                     "kind": ICAG_KINDS.get(step.kind, ""), "date": short_date(step.on_date),
                     "term": short_date(step.term_ends_on), "diagnostic": clean(diagnostic),
                     "exit_reason": EXIT_REASONS.get(step.exit_reason, "")})
    return rows


def minutes_visas(session: Session, meeting: Meeting) -> list[dict]:
    """The two signature blocks, in order: each with its visa (name, Paris date and time,
    SHA-256 of the version the directors read), else empty strings. A version built while
    visas are awaited carries none (nobody approved it yet); once both signed, every later
    version, the final one first, reproduces the visas of the version signed."""
    found = ({} if meeting.state == "pv_en_signature"
             else documents.standing_visas(session, meeting, None))
    blocks = []
    for code, label in SIGNATORIES:
        visa = found.get(code)
        if visa is None:
            blocks.append({"institution_label": label, "name": "", "date": "", "sha256": ""})
            continue
        user = session.get(User, visa.user_id)
        local, zone = _local(visa.signed_at)
        blocks.append({"institution_label": label,
                       "name": clean(user.full_name if user else ""),
                       "date": f"{short_date(local.date())} à {french_time(local)}{zone}",
                       "sha256": clean(visa.sha256)})
    return blocks


def minutes_context(session: Session, vault: Vault, meeting: Meeting, version: int,
                    today: date, sheet: Sheet | None = None) -> dict:
    """Attendance by structure with counts, counts per motif, the avis per situation by
    reference only, the ICAG section and the two signature blocks."""
    labels = reference_labels(session)
    _load(session, meeting)
    groups: dict[str, dict] = {}
    for row in _members(meeting):
        structure = row.member.structure.name if row.member.structure else "Sans structure"
        group = groups.setdefault(structure, {"structure": clean(structure), "members": [],
                                              **{key: 0 for key in ATTENDANCE}})
        if row.attendance in ATTENDANCE:
            group[row.attendance] += 1
        presence = ATTENDANCE.get(row.attendance, "Non renseigné")
        if row.attendance == "remplace" and row.replacement:
            presence = f"{presence} {row.replacement}"
        group["members"].append({"name": clean(row.member.name),
                                 "function": clean(row.member.function),
                                 "status": MEMBER_KINDS.get(row.member.kind, ""),
                                 "attendance": clean(presence)})
    attendance = [{**g, **{key: str(g[key]) for key in ATTENDANCE}} for g in groups.values()]
    totals = {key: str(value) for key, value in attendance_counts(meeting).items()}

    items = (_sheet_items(meeting, "situation", with_adjourned=True)
             + _sheet_items(meeting, "icag", with_adjourned=True))
    decisions = _decisions(session, {(meeting.id, i.sheet_id) for i in items})
    motivations, action_labels = _decision_texts(vault, decisions.values())
    per_motif: dict[str, dict[str, int]] = {}
    for item in items:
        counts = per_motif.setdefault(item.sheet.motif or "", {"examined": 0, "adjourned": 0})
        if item.outcome == "examine":
            counts["examined"] += 1
        elif item.outcome == "ajourne":
            counts["adjourned"] += 1
    order = list(labels["motif"])
    motif_counts = [{"motif": clean(labels["motif"].get(code, code) or "Motif non précisé"),
                     "examined": str(c["examined"]), "adjourned": str(c["adjourned"])}
                    for code, c in sorted(per_motif.items(), key=lambda kv: (
                        order.index(kv[0]) if kv[0] in order else len(order), kv[0]))]

    def outcomes(part: str) -> list[dict]:
        return [_outcome(i, decisions.get((meeting.id, i.sheet_id)), labels, motivations,
                         action_labels)
                for i in items if i.part == part]

    return _header(session, meeting, version, today) | {
        "attendance": attendance,
        "attendance_totals": totals,
        "motif_counts": motif_counts,
        "situations_examined": str(sum(i.outcome == "examine" for i in items)),
        "situations_adjourned": str(sum(i.outcome == "ajourne" for i in items)),
        "partnership": [_partnership_outcome(i) for i in meeting.items
                        if i.part == "partenariat"],
        "situations": outcomes("situation"),
        "icag": outcomes("icag"),
        "icag_steps": _icag_steps(session, meeting),
        "visas": minutes_visas(session, meeting),
    }


# -- fiche retour -----------------------------------------------------------------------------
def _next_passage(session: Session, meeting: Meeting, sheet: Sheet,
                  decision: Decision | None, adjourned: bool) -> str:
    later = session.scalar(
        select(Meeting.starts_at).join(AgendaItem, AgendaItem.meeting_id == Meeting.id)
        .where(AgendaItem.sheet_id == sheet.id, Meeting.starts_at > meeting.starts_at,
               Meeting.state.not_in(("annulee", "reportee")))
        .order_by(Meeting.starts_at).limit(1))
    if later is not None:
        return f"{french_date(later.date())} à {french_time(later)} (séance programmée)"
    if decision is not None and decision.come_back_on:
        return f"à partir du {short_date(decision.come_back_on)} (séance à fixer)"
    if adjourned:  # proposed again to the next session of the circonscription
        return "à la prochaine séance de l'instance (date à fixer)"
    return ""


def _formal_decision_text(vault: Vault, decision: Decision) -> str:
    """The decision taken at the second level, as the fiche retour states it."""
    formal = decision.formal
    detail = vault.open(formal, "detail")
    text = (f"{FORMAL_DECISION.get(decision.formal_decision_by, '')} – décision prise le "
            f"{short_date(formal.decided_on)} par {formal.author} : "
            f"{FORMAL_OUTCOMES.get(formal.outcome, formal.outcome)}")
    return clean(f"{text}. {detail.reveal()}" if detail is not None else text)


def feedback_context(session: Session, vault: Vault, meeting: Meeting, version: int,
                     today: date, sheet: Sheet | None = None) -> dict:
    """One situation for its referent, by reference and pseudonym: the identity stays with
    the referent (this process never holds the identity chain)."""
    if sheet is None:
        raise ValueError("the fiche retour is built for one sheet")
    item = next((i for i in meeting.items if i.sheet_id == sheet.id), None)
    if item is None:
        raise ValueError("this sheet is not on the session's agenda")
    labels = reference_labels(session)
    decision = _decisions(session, {(meeting.id, sheet.id)}).get((meeting.id, sheet.id))
    motivations, action_labels = _decision_texts(vault, [decision] if decision else [])
    outcome = _outcome(item, decision, labels, motivations, action_labels)
    next_passage = _next_passage(session, meeting, sheet, decision, outcome["adjourned"])
    if outcome["adjourned"]:
        avis = "Situation ajournée"
        motivation = outcome["adjourn_reason"]
    else:
        avis = outcome["avis"] or "Avis non encore rendu"
        motivation = outcome["motivation"]
    information = ["Informer la personne de l'avis rendu par l'instance et de sa motivation."]
    if outcome["adjourned"]:
        information.append("Lui indiquer que l'examen de sa situation est reporté à une "
                           "prochaine séance.")
    if outcome["actions"]:
        information.append("Convenir avec elle de la mise en œuvre des préconisations et de "
                           "leurs échéances.")
    formal_decision = outcome["formal_decision"]
    if decision is not None and decision.formal_decision_by:
        who = {"departement": "du Département", "france_travail": "de France Travail"}.get(
            decision.formal_decision_by, "de l'institution compétente")
        if decision.formal is None:
            formal_decision = f"{formal_decision} – en attente"
            information.append(f"Lui préciser que cet avis doit encore faire l'objet d'une "
                               f"décision formelle {who}, qui lui sera notifiée.")
        else:
            formal_decision = _formal_decision_text(vault, decision)
            information.append(f"Lui notifier la décision formelle {who} et ses motifs.")
    if next_passage:
        information.append(f"Lui indiquer que sa situation sera de nouveau examinée "
                           f"({next_passage}).")
    information.append("Recueillir ses observations et en faire part à l'animation de "
                       "l'instance si nécessaire.")
    circonscription = clean(meeting.circonscription.name)
    return {
        "circonscription": circonscription,
        "meeting_date": french_date(meeting.starts_at.date()),
        "version": str(version),
        "generated_on": french_date(today),
        "reference": clean(sheet.reference),
        "pseudonym": clean(sheet.beneficiary.pseudonym),
        "structure": outcome["structure"],
        "motif": outcome["motif"],
        "avis": avis,
        "adjourned": outcome["adjourned"],  # the motivation is then the adjournment's reason
        "motivation": motivation,
        "actions": outcome["actions"],
        "next_passage": next_passage,
        "formal_decision": formal_decision,
        "information": information,
        "contact": f"Chargé·e d'animation territoriale de l'ICL-I – circonscription de "
                   f"{circonscription}",
    }


Builder = Callable[..., dict]
# RGPD information of the person (docs/domain.md); an administrator may upload a template with
# the local wording (the DPO's own address, the retention validated with the archives).
DPO_CONTACT = ("le ou la délégué·e à la protection des données du Département de la "
               "Seine-Saint-Denis (coordonnées sur le site du Département ou auprès de votre "
               "référent·e)")
RETENTION = ("Vos informations sont conservées tant que votre situation est suivie par "
             "l'instance, puis au plus deux ans après le dernier contact avec vous ; elles sont "
             "ensuite détruites. Les procès-verbaux, qui ne mentionnent que la référence de "
             "votre dossier, sont archivés selon les règles des archives publiques.")


def information_context(session: Session, vault: Vault, meeting: Meeting | None, version: int,
                        today: date, sheet: Sheet | None = None) -> dict:
    """The person's information note, by sheet reference: the referent writes the name in by
    hand or beside it (this process never holds the identity chain)."""
    if sheet is None:
        raise ValueError("the information note is built for one sheet")
    motifs = reference_labels(session)["motif"]
    return {
        "reference": clean(sheet.reference),
        "structure": clean(sheet.structure.name),
        "circonscription": clean(sheet.circonscription.name),
        "motif": clean(motifs.get(sheet.motif or "", "")) or "à préciser avec votre référent·e",
        "retention": RETENTION,
        "dpo_contact": DPO_CONTACT,
        "version": str(version),
        "generated_on": french_date(today),
    }


BUILDERS: dict[str, tuple[Builder, set[str]]] = {
    "agenda": (agenda_context, AGENDA_KEYS),
    "dossier": (dossier_context, DOSSIER_KEYS),
    "attendance": (attendance_context, ATTENDANCE_KEYS),
    "minutes": (minutes_context, MINUTES_KEYS),
    "feedback": (feedback_context, FEEDBACK_KEYS),
    "information": (information_context, INFORMATION_KEYS),
}


# -- sample data (test render of uploaded templates) -------------------------------------------
def _sample_header() -> dict:
    return {"circonscription": "Saint-Denis", "meeting_date": "mardi 15 décembre 2026",
            "meeting_time": "14 h 00", "place": "Salle du conseil, 2 rue de l'Exemple",
            "facilitators": "Camille Exemple", "version": "3",
            "generated_on": "mardi 8 décembre 2026"}


def _sample_entry(number: str, slot: str, reference: str, pseudonym: str, icag: str = "",
                  passage: str = "Nouvelle situation") -> dict:
    return {"number": number, "time_slot": slot, "reference": reference,
            "pseudonym": pseudonym, "label": f"{reference} – {pseudonym}",
            "structure": "ALI de Saint-Denis", "structure_type": "Agence Locale d'Insertion",
            "motif": "Demande de réorientation de parcours", "passage": passage,
            "icag_kind": icag, "urgent": "Urgente" if number == "1" else "",
            "late": "Ajout tardif" if number == "2" else ""}


def _sample_members() -> list[dict]:
    return [
        {"name": "Dominique Exemple", "structure": "Service social départemental",
         "function": "Responsable de circonscription", "status": "Membre permanent",
         "answer": "Confirmé"},
        {"name": "Alex Modèle", "structure": "France Travail – agence de Saint-Denis",
         "function": "Conseiller·ère accompagnement global", "status": "Invité",
         "answer": "Remplacé par Sam Suppléant"},
    ]


def _sample_agenda() -> dict:
    passage = "Retour (passage du 10/11/2026)"
    return _sample_header() | {
        "video_link": "https://visio.example.invalid/icli-c01",
        "partnership": [{"title": "Présentation du dispositif de mobilité",
                         "duration": "20 min", "time_slot": "14 h 00",
                         "presenter": "PLIE de Plaine Commune – Chargée de mission"}],
        "situations": [_sample_entry("1", "14 h 30", "ICL-C01-2026-0001", "Tournesol-17"),
                       _sample_entry("2", "14 h 50", "ICL-C01-2026-0002", "Glycine-42",
                                     passage=passage)],
        "icag": [_sample_entry("3", "15 h 10", "ICL-C01-2026-0003", "Mimosa-08",
                               icag="Renouvellement")],
        "followups": [{"reference": "ICL-C01-2026-0000", "session_date": "10/11/2026",
                       "porteur": "ALI de Saint-Denis", "echeance": "15/01/2027",
                       "state": "En cours"}],
        "members": _sample_members(),
    }


def _sample_fiche(number: str, reference: str, pseudonym: str, shared: bool) -> dict:
    return {
        "number": number, "time_slot": "14 h 30", "part": "Étude de situation",
        "reference": reference, "pseudonym": pseudonym, "structure": "ALI de Saint-Denis",
        "structure_type": "Agence Locale d'Insertion",
        "motif": "Demande de réorientation de parcours",
        "secondary_motifs": "Situation complexe / cumul de freins", "urgent": "Non",
        "fields": [{"label": "Situation familiale", "value": "Personne isolée"},
                   {"label": "Ancienneté au RSA", "value": "Plus de 5 ans"}],
        "parcours": "Parcours social depuis deux ans.\nDémarches de soins engagées.",
        "actions": [{"action": "Atelier de recherche d'emploi", "structure": "ALI",
                     "start": "02/03/2026", "end": "", "result": "En cours"}],
        "freins": [{"label": "Mobilité (permis, transport, périmètre)",
                    "intensity": "Important"}],
        "sensitive_shared": shared,
        "sensitive": ([{"label": "Santé / handicap : précisions utiles au parcours",
                        "value": "Problématique de santé impactant le parcours, suivi en cours"}]
                      if shared else []),
        "question": "Une réorientation vers l'ALI est-elle pertinente ?",
        "proposition": "Réorientation vers l'ALI.",
        "person_informed": "Oui, le 01/10/2026", "person_position": "D'accord",
        "person_comment": "Souhaite une formation.",
        "passages": [{"date": "10/11/2026", "reference": reference,
                      "motif": "Demande de réorientation de parcours",
                      "avis": "Ajournée"}],
    }


def _sample_outcome(reference: str, adjourned: bool, icag: str = "") -> dict:
    return {
        "reference": reference, "time_slot": "14 h 30", "icag_kind": icag,
        "motif": "Demande de réorientation de parcours", "structure": "ALI de Saint-Denis",
        "structure_type": "Agence Locale d'Insertion",
        "outcome": "Ajournée" if adjourned else "Avis rendu", "adjourned": adjourned,
        "decided": not adjourned,
        "adjourn_reason": "Complément d'information demandé." if adjourned else "",
        "avis": "" if adjourned else "Maintien du parcours et du référent, avec préconisations",
        "motivation": "" if adjourned else "Le parcours progresse ; appui sur la mobilité.",
        "actions": [] if adjourned else [{"label": "Aide au permis de conduire",
                                          "porteur": "ALI de Saint-Denis",
                                          "echeance": "15/03/2027"}],
        "come_back_on": "" if adjourned else "01/04/2027",
        "formal_decision": "" if adjourned else "Oui, par le Département",
    }


def sample_context(kind: str) -> dict:
    """A representative context with every key of ``kind`` and every loop filled: used to
    test-render a template an administrator uploads. Fictitious values only."""
    if kind == "agenda":
        return _sample_agenda()
    if kind == "dossier":
        agenda = _sample_agenda()
        return agenda | {
            "copies": [{"number": str(n)} | m for n, m in enumerate(agenda["members"], 1)],
            "sheets": [_sample_fiche("1", "ICL-C01-2026-0001", "Tournesol-17", True),
                       _sample_fiche("2", "ICL-C01-2026-0002", "Glycine-42", False)],
            "open_recommendations": [{"reference": "ICL-C01-2026-0000",
                                      "session_date": "10/11/2026",
                                      "preconisation": "Bilan de compétences",
                                      "porteur": "ALI de Saint-Denis",
                                      "echeance": "15/01/2027", "state": "En cours"}],
        }
    if kind == "attendance":
        return _sample_header() | {
            "members": _sample_members(),
            "presenters": [{"structure": "ALI de Saint-Denis",
                            "label": "Référent·e présentant les situations n° 1 et 3",
                            "time_slots": "14 h 30, 15 h 10"}],
        }
    if kind == "minutes":
        return _sample_header() | {
            "attendance": [{"structure": "Service social départemental", "present": "1",
                            "excuse": "0", "absent": "0", "remplace": "1",
                            "members": [{"name": "Dominique Exemple",
                                         "function": "Responsable de circonscription",
                                         "status": "Membre permanent",
                                         "attendance": "Présent·e"}]}],
            "attendance_totals": {"present": "1", "excuse": "0", "absent": "0",
                                  "remplace": "1"},
            "motif_counts": [{"motif": "Demande de réorientation de parcours",
                              "examined": "1", "adjourned": "1"}],
            "situations_examined": "1", "situations_adjourned": "1",
            "partnership": [{"title": "Présentation du dispositif de mobilité",
                             "duration": "20 min", "time_slot": "14 h 00",
                             "presenter": "PLIE de Plaine Commune – Chargée de mission",
                             "summary": "Aide au permis et location solidaire de véhicules.",
                             "next_step": "Diffuser la plaquette aux référent·e·s.",
                             "follow_up_on": "12/01/2027"}],
            "situations": [_sample_outcome("ICL-C01-2026-0001", False),
                           _sample_outcome("ICL-C01-2026-0002", True)],
            "icag": [_sample_outcome("ICL-C01-2026-0003", False, icag="Renouvellement")],
            "icag_steps": [{"reference": "ICL-C01-2026-0003", "kind": "Renouvellement",
                            "date": "15/12/2026", "term": "31/01/2028", "diagnostic": "",
                            "exit_reason": ""}],
            "visas": [{"institution_label": SIGNATORIES[0][1], "name": "Claude Directeur",
                       "date": "20/12/2026 à 10 h 05", "sha256": "0" * 64},
                      {"institution_label": SIGNATORIES[1][1], "name": "", "date": "",
                       "sha256": ""}],
        }
    if kind == "feedback":
        outcome = _sample_outcome("ICL-C01-2026-0001", False)
        return {
            "circonscription": "Saint-Denis", "meeting_date": "mardi 15 décembre 2026",
            "version": "1", "generated_on": "mercredi 16 décembre 2026",
            "reference": "ICL-C01-2026-0001", "pseudonym": "Tournesol-17",
            "structure": outcome["structure"], "motif": outcome["motif"],
            "avis": outcome["avis"], "adjourned": False, "motivation": outcome["motivation"],
            "actions": outcome["actions"],
            "next_passage": "à partir du 01/04/2027 (séance à fixer)",
            "formal_decision": outcome["formal_decision"],
            "information": ["Informer la personne de l'avis rendu par l'instance.",
                            "Convenir avec elle de la mise en œuvre des préconisations."],
            "contact": "Chargé·e d'animation territoriale de l'ICL-I – circonscription de "
                       "Saint-Denis",
        }
    if kind == "information":
        return {"reference": "ICL-C01-2026-0001", "structure": "ALI de Saint-Denis",
                "circonscription": "Saint-Denis",
                "motif": "Demande de réorientation de parcours", "retention": RETENTION,
                "dpo_contact": DPO_CONTACT, "version": "1",
                "generated_on": "mardi 1er décembre 2026"}
    raise KeyError(kind)
