"""Facilitators' follow-up: open préconisations, situations to bring back, and monthly
statistics without identities (docs/domain.md)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select

from intake.access import role_required
from intake.dbsession import db, vault
from intake.ids import record_id
from intake.meetings.views import send_pending
from shared.db import utc_to_paris, utcnow
from shared.domain import decisions, icag, meetings, partnership, returns
from shared.domain.reference import reference_labels
from shared.domain.sheets import facilitator_sheets_query
from shared.domain.statistics import MonthlyStatistics, monthly_statistics
from shared.domain.steering import COLUMNS, Period, steering_view
from shared.errors import DomainError, InvalidInputError
from shared.models import AgendaItem, Circonscription, DecisionAction, Sheet
from shared.models.meeting import FORMAL_DECISION
from shared.text import FRENCH_MONTHS

bp = Blueprint("followup", __name__, url_prefix="/suivi")

BRING_BACK_DAYS = 60
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
CSV_HEADER = ["Circonscription", "Mois", "Indicateur", "Détail", "Valeur"]


# -- dashboard -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActionRow:
    action: DecisionAction
    label: str
    avis: str
    overdue: bool


@bp.route("/")
@role_required("facilitator")
def dashboard():
    session, today = db(), date.today()
    scope = current_user.circonscription_ids
    avis_labels = reference_labels(session).get("avis", {})
    actions = meetings.open_actions(session, scope)
    # Situational content chain: decrypting an action's label is not an audited access.
    opened = vault().open_many(actions, ["label"]) if actions else []
    rows = [ActionRow(action=action,
                      label=secret["label"].reveal() if secret["label"] else "",
                      avis=avis_labels.get(action.decision.avis, action.decision.avis),
                      overdue=action.due_on is not None and action.due_on < today)
            for action, secret in zip(actions, opened, strict=True)]
    bring_back = meetings.situations_to_bring_back(
        session, scope, today + timedelta(days=BRING_BACK_DAYS))
    waiting = session.scalar(select(func.count()).select_from(
        facilitator_sheets_query(current_user).where(Sheet.status == "soumise").subquery()))
    return render_template("followup/dashboard.html", actions=rows, bring_back=bring_back,
                           avis_labels=avis_labels, waiting=waiting, today=today,
                           horizon=BRING_BACK_DAYS, form=FlaskForm(),
                           partnership=partnership.follow_ups(session, scope),
                           ag_terms=icag.terms_ending(session, scope, today))


@bp.route("/preconisations/<int:action_id>/realisee", methods=["POST"])
@role_required("facilitator")
def mark_done(action_id: int):
    action = db().get(DecisionAction, action_id)
    if (action is None or action.decision.sheet.circonscription_id
            not in current_user.circonscription_ids):
        abort(404)
    reference = action.decision.sheet.reference
    try:
        meetings.mark_action_done(db(), vault(), action)  # writes the "action_done" audit row
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        db().commit()
        flash(f"Préconisation de la fiche {reference} marquée réalisée.", "success")
    return redirect(url_for("followup.dashboard"))


@bp.route("/retours/<int:sheet_id>", methods=["POST"])
@role_required("facilitator")
def bring_back(sheet_id: int):
    """« Faire revenir en instance », from the dashboard or a session page (``seance``)."""
    sheet = db().get(Sheet, sheet_id)
    if sheet is None or sheet.circonscription_id not in current_user.circonscription_ids:
        abort(404)
    meeting_id = request.form.get("seance", type=record_id)
    back = (url_for("meetings.show", meeting_id=meeting_id) + "#retours" if meeting_id
            else url_for("followup.dashboard"))
    try:
        returns.bring_back(db(), vault(), sheet, actor_id=current_user.id)
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(back)
    db().commit()
    send_pending()  # the referent's e-mail
    flash(f"Fiche {sheet.reference} : le ou la référent·e est invité·e à l'actualiser pour "
          "son retour en instance.", "success")
    return redirect(back)


@bp.route("/decisions-en-attente")
@role_required("facilitator", "director")
def pending_decisions():
    """Avis awaiting the Département's or France Travail's formal decision: a facilitator's
    circonscriptions, or a director's institutions (by reference only, as in the PV)."""
    facilitator = current_user.has_role("facilitator")
    waiting = decisions.pending(
        db(), circonscription_ids=current_user.circonscription_ids if facilitator else None,
        institutions=None if facilitator else current_user.institutions)
    return render_template("followup/pending_decisions.html", waiting=waiting,
                           facilitator=facilitator, formal=FORMAL_DECISION,
                           avis_labels=reference_labels(db()).get("avis", {}))


@bp.route("/partenariat/<int:item_id>/fait", methods=["POST"])
@role_required("facilitator")
def partnership_done(item_id: int):
    item = db().get(AgendaItem, item_id)
    if item is None or item.meeting.circonscription_id not in current_user.circonscription_ids:
        abort(404)
    try:
        partnership.mark_follow_up_done(db(), vault(), item)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        db().commit()
        flash("Suivi du point partenarial marqué fait.", "success")
    return redirect(url_for("followup.dashboard"))


# -- statistics ------------------------------------------------------------------------------
def _chosen() -> tuple[list[Circonscription], Circonscription, int, int]:
    """The user's circonscriptions, the one asked for (404 outside scope) and the month."""
    circonscriptions = list(db().scalars(
        select(Circonscription)
        .where(Circonscription.id.in_(current_user.circonscription_ids or {-1}))
        .order_by(Circonscription.code)))
    raw = request.args.get("circonscription", "").strip()
    if raw:
        chosen = next((c for c in circonscriptions if raw.isdigit() and c.id == int(raw)), None)
    else:
        chosen = circonscriptions[0] if circonscriptions else None
    if chosen is None:
        abort(404)
    month_text = request.args.get("mois", "").strip() or date.today().strftime("%Y-%m")
    match = MONTH_RE.match(month_text)
    if match is None:
        abort(400)
    return circonscriptions, chosen, int(match.group(1)), int(match.group(2))


def _number(value: float | int | None) -> str:
    """French notation: integers as is, decimals with one digit after a comma."""
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}".replace(".", ",")


def _sections(stats: MonthlyStatistics) -> list[tuple[str, list[tuple[str, str]]]]:
    """The figures in display order; the page and the CSV both read them from here."""
    submitted, outcomes, delay = stats.submitted, stats.outcomes, stats.delay
    return [
        ("Fiches soumises", [("Total", _number(submitted.total))]),
        ("Fiches soumises par motif",
         [(label, _number(n)) for label, n in submitted.by_motif.items()]),
        ("Fiches soumises par type de structure",
         [(label, _number(n)) for label, n in submitted.by_structure_type.items()]),
        ("Avis rendus", [("Total", _number(outcomes.decisions))]),
        ("Avis rendus par avis",
         [(label, _number(n)) for label, n in outcomes.by_avis.items()]),
        ("Situations ajournées", [("Total", _number(outcomes.adjourned))]),
        ("Délai entre la soumission et la séance (jours)",
         [("Avis pris en compte", _number(delay.count)),
          ("Médiane", _number(delay.median_days)),
          ("Moyenne", _number(delay.mean_days))]),
        ("Relecture des textes : éléments identifiants signalés aux référent·e·s",
         [(label, _number(n)) for label, n in stats.text_review.items()]),
    ]


def _compute(circonscription: Circonscription, year: int, month: int) -> MonthlyStatistics:
    try:
        return monthly_statistics(db(), circonscription.id, year, month)
    except InvalidInputError:
        abort(400)


@bp.route("/statistiques")
@role_required("facilitator")
def statistics():
    circonscriptions, chosen, year, month = _chosen()
    stats = _compute(chosen, year, month)
    return render_template("followup/statistics.html", circonscriptions=circonscriptions,
                           chosen=chosen, month_value=f"{year:04d}-{month:02d}",
                           month_label=f"{FRENCH_MONTHS[month - 1]} {year}",
                           sections=_sections(stats))


@bp.route("/departement")
@role_required("director", "facilitator")
def department():
    """Every circonscription side by side, for a year or one of its months (counts only)."""
    today = utc_to_paris(utcnow()).date()
    year = request.args.get("annee", today.year, type=int)
    month = request.args.get("mois", 0, type=int) or None
    try:
        view = steering_view(db(), Period(year, month))
    except InvalidInputError as exc:
        flash(exc.message, "error")
        view = steering_view(db(), Period(today.year))
    peak = max([1, *(max(submitted, decided) for _m, submitted, decided in view.monthly)])
    return render_template("followup/department.html", view=view, columns=COLUMNS,
                           months=FRENCH_MONTHS, years=range(today.year - 4, today.year + 1),
                           peak=peak)


def _csv_cell(text: str) -> str:
    # Labels are edited by administrators: never let a spreadsheet read one as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.route("/statistiques.csv")
@role_required("facilitator")
def statistics_csv():
    _circonscriptions, chosen, year, month = _chosen()
    stats = _compute(chosen, year, month)
    period = f"{year:04d}-{month:02d}"
    out = io.StringIO()
    out.write("\ufeff")  # so that spreadsheet software reads the file as UTF-8
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for section, rows in _sections(stats):
        for detail, value in rows:
            writer.writerow([_csv_cell(chosen.name), period, section, _csv_cell(detail), value])
    filename = f"statistiques-{re.sub(r'[^A-Za-z0-9_-]', '', chosen.code)}-{period}.csv"
    return Response(out.getvalue(), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
