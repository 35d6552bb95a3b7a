"""Le procès-verbal: attendance, counts, the avis per situation by reference only (the PV
is archived), the ICAG section and the two signature blocks; the avis of one situation is
also what the fiche retour reports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy.orm import Session

from generator.contexts.agenda import open_recommendations
from generator.contexts.common import (
    decisions_of,
    header,
    load_agenda,
    sheet_items,
    sorted_members,
)
from generator.contexts.formatting import (
    clean,
    french_date,
    french_time,
    local_time,
    short_date,
    slot_time,
)
from shared.domain import documents
from shared.domain.icag import steps_of_meeting
from shared.domain.meetings import attendance_counts, secretary_label
from shared.domain.reference import reference_labels
from shared.encrypted import Vault
from shared.models import AgendaItem, Decision, Meeting, Sheet, User
from shared.models.document import INSTITUTIONS
from shared.models.icag import EXIT_REASONS
from shared.models.meeting import ATTENDANCE, FORMAL_DECISION, ICAG_KINDS, MEMBER_KINDS

SIGNATORIES = (
    ("departement", "Pour le Département\u00a0: le DGA ou son ou sa délégataire"),
    ("france_travail", "Pour France Travail\u00a0: la Directrice territoriale ou son ou sa "
                       "délégataire"),
)
if {code for code, _label in SIGNATORIES} != set(INSTITUTIONS):
    raise RuntimeError("SIGNATORIES must name every institution of INSTITUTIONS")


def _actions(decision: Decision | None, opened: dict[int, str]) -> list[dict]:
    if decision is None:
        return []
    return [{"label": clean(opened.get(a.id, "")),
             "porteur": clean(a.owner.name if a.owner else ""),
             "echeance": short_date(a.due_on)} for a in decision.actions]


def decision_texts(vault: Vault, decisions: Iterable[Decision]
                   ) -> tuple[dict[int, str], dict[int, str]]:
    """Decrypted motivations (by decision id) and action labels (by action id)."""
    decisions = list(decisions)
    actions = [a for d in decisions for a in d.actions]
    motivations = {d.id: (s["motivation"].reveal() if s["motivation"] is not None else "")
                   for d, s in zip(decisions, vault.open_many(decisions, ["motivation"]),
                                   strict=True)}
    labels = {a.id: (s["label"].reveal() if s["label"] is not None else "")
              for a, s in zip(actions, vault.open_many(actions, ["label"]), strict=True)}
    return motivations, labels


def outcome_of(item: AgendaItem, decision: Decision | None, labels: dict[str, dict[str, str]],
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
    for item in sheet_items(meeting, "icag"):
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
        local, zone = local_time(visa.signed_at)
        blocks.append({"institution_label": label,
                       "name": clean(user.full_name if user else ""),
                       "date": f"{short_date(local.date())} à {french_time(local)}{zone}",
                       "sha256": clean(visa.sha256)})
    return blocks


def approved_version(session: Session, meeting: Meeting) -> dict:
    """The version both directors signed, which the final minutes name: its number, file
    name and SHA-256 (of the Word file, as in the visas); empty strings before that."""
    document = documents.approved_minutes(session, meeting)
    visas = documents.minutes_visas(session, document) if document is not None else []
    if not visas:
        return {"number": "", "filename": "", "sha256": ""}
    return {"number": str(document.number), "filename": clean(document.filename),
            "sha256": clean(visas[0].sha256)}


def _done_on(session: Session, meeting: Meeting, today: date) -> str:
    """« Fait le »: the day the second visa made the minutes signed, else the day built."""
    visas = documents.standing_visas(session, meeting, None) if meeting.state in \
        documents.SIGNED_STATES else {}
    if len(visas) == len(SIGNATORIES):
        return french_date(local_time(max(v.signed_at for v in visas.values()))[0].date())
    return french_date(today)


def minutes_context(session: Session, vault: Vault, meeting: Meeting, version: int,
                    today: date, sheet: Sheet | None = None) -> dict:
    """Attendance by structure with counts, counts per motif, the avis per situation by
    reference only, the ICAG section and the two signature blocks."""
    labels = reference_labels(session)
    load_agenda(session, meeting)
    groups: dict[str, dict] = {}
    for row in sorted_members(meeting):
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

    items = (sheet_items(meeting, "situation", with_adjourned=True)
             + sheet_items(meeting, "icag", with_adjourned=True))
    decisions = decisions_of(session, {(meeting.id, i.sheet_id) for i in items})
    motivations, action_labels = decision_texts(vault, decisions.values())
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
        return [outcome_of(i, decisions.get((meeting.id, i.sheet_id)), labels, motivations,
                           action_labels)
                for i in items if i.part == part]

    return header(session, meeting, version, today) | {
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
        "followups": open_recommendations(session, vault, meeting),
        "secretary": clean(secretary_label(session, meeting)),
        "done_at": clean(meeting.circonscription.name),
        "done_on": _done_on(session, meeting, today),
        "approved": approved_version(session, meeting),
        "visas": minutes_visas(session, meeting),
    }
