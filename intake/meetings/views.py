"""Facilitators: calendar, members, agenda, attendance, avis, documents of their sessions."""

from __future__ import annotations

import io
from datetime import date, datetime, time
from typing import NamedTuple

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from intake.access import meeting_in_scope, role_required
from intake.choices import choices
from intake.dbsession import db, services, vault
from intake.ids import record_id
from intake.meetings.forms import (
    ACTION_ROWS,
    AdjournForm,
    AvisForm,
    CorrectionForm,
    FormalDecisionForm,
    InscribeForm,
    ItemForm,
    MeetingForm,
    MemberForm,
    PostponeForm,
    ReasonForm,
    ScheduleForm,
)
from shared import heartbeat, outbox
from shared.domain import avis as avis_domain
from shared.domain import decisions, documents, icag, partnership, returns
from shared.domain import meetings as domain
from shared.domain.reference import reference_labels
from shared.domain.screening import DISMISS_REASONS, TextsNeedReviewError
from shared.errors import DomainError, NotFoundError
from shared.models import (
    AgendaItem,
    Circonscription,
    Decision,
    GeneratedDocument,
    Meeting,
    Member,
    Schedule,
    Sheet,
    Structure,
)
from shared.models.document import (
    DOCUMENT_KINDS,
    INSTITUTIONS,
    PER_SHEET_KINDS,
    SHEET_ONLY_KINDS,
)
from shared.models.meeting import (
    AGENDA_PARTS,
    ANSWERS,
    ATTENDANCE,
    FORMAL_DECISION,
    ICAG_KINDS,
    REVISION_KINDS,
)
from shared.text import parse_date

bp = Blueprint("meetings", __name__, url_prefix="/seances")


QUEUE_UNREACHABLE = ("Le service des documents et des courriels est injoignable pour le "
                     "moment : votre demande est enregistrée et partira dès son retour, sans "
                     "rien à refaire.")


def send_pending(meeting_id: int | None = None) -> None:
    """Hand unsent jobs (the meeting's, or all) and e-mails to Redis; if it is down or hung
    they wait (outbox), and the page says so."""
    if outbox.send_pending(db(), services().redis, services().keyring, meeting_id).unreachable:
        flash(QUEUE_UNREACHABLE, "warning")


def _circonscription_in_scope(circ_id: int) -> Circonscription:
    circ = db().get(Circonscription, circ_id)
    if circ is None or circ.id not in current_user.circonscription_ids:
        abort(404)
    return circ


def _done(meeting: Meeting, message: str, anchor: str = ""):
    """Commit, hand what it triggered (documents, e-mails) to the queue, and go back to the
    session page with a French confirmation."""
    db().commit()
    send_pending()
    flash(message, "success")
    return redirect(url_for("meetings.show", meeting_id=meeting.id) + anchor)


def _refused(meeting: Meeting, exc: DomainError, anchor: str = ""):
    db().rollback()
    flash(exc.message, "error")
    return redirect(url_for("meetings.show", meeting_id=meeting.id) + anchor)


def _dismissals() -> dict[str, str]:
    """The review form's ``dismiss_<finding key>`` = reason code entries."""
    return {name.removeprefix("dismiss_"): value for name, value in request.form.items()
            if name.startswith("dismiss_") and value}


class ReviewField(NamedTuple):
    """A refused text shown again on the review page, to be rephrased."""

    name: str
    label: str
    text: str
    limit: int


def _review_page(meeting: Meeting, exc: TextsNeedReviewError, *, title: str,
                 fields: list[ReviewField], hidden: dict[str, str]):
    """The refused texts with each caught word highlighted, to rephrase or dismiss findings
    (the words are on the page only: the message names kinds, never words)."""
    db().rollback()
    flash(exc.message, "error")
    return render_template("meetings/review.html", meeting=meeting, review=exc,
                           reasons=DISMISS_REASONS, form=FlaskForm(), title=title,
                           action=request.path, fields=fields, hidden=hidden), 422


def _reason_field(label: str, text: str) -> list[ReviewField]:
    return [ReviewField("reason", label, text, 500)]


def _parse_day(day: str, at: str = "00:00") -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(day), time.fromisoformat(at))
    except (TypeError, ValueError):
        return None


# -- calendar -------------------------------------------------------------------------------
@bp.route("/", methods=["GET", "POST"])
@role_required("facilitator")
def index():
    circs = db().scalars(select(Circonscription).where(
        Circonscription.id.in_(current_user.circonscription_ids)).order_by(Circonscription.code)
    ).all()
    form = MeetingForm()
    form.circonscription_id.choices = choices((c.id, c.name) for c in circs)
    if form.validate_on_submit():
        circ = _circonscription_in_scope(form.circonscription_id.data)
        starts_at = _parse_day(form.day.data, form.at.data)
        if starts_at is None:
            flash("Date ou heure invalide.", "error")
        else:
            try:
                meeting = domain.plan_meeting(db(), vault(), circ, starts_at,
                                              form.place.data or "",
                                              video_link=form.video_link.data or "")
            except DomainError as exc:
                db().rollback()
                flash(exc.message, "error")
            else:
                db().commit()
                flash("Séance planifiée.", "success")
                return redirect(url_for("meetings.show", meeting_id=meeting.id))
    rows = db().scalars(select(Meeting).where(
        Meeting.circonscription_id.in_(current_user.circonscription_ids))
        .order_by(Meeting.starts_at.desc())).all()
    return render_template("meetings/index.html", meetings=rows, form=form, circs=circs)


@bp.route("/calendrier/<int:circ_id>", methods=["GET", "POST"])
@role_required("facilitator")
def schedule(circ_id: int):
    circ = _circonscription_in_scope(circ_id)
    current = db().scalar(select(Schedule).where(Schedule.circonscription_id == circ.id))
    form = ScheduleForm(obj=current)
    if current is not None and not form.is_submitted():
        form.at.data = current.time
    if form.validate_on_submit():
        try:
            _saved, created = domain.save_schedule_and_plan(
                db(), vault(), circ, weekday=form.weekday.data,
                week_of_month=form.week_of_month.data, at=form.at.data,
                place=form.place.data or "", video_link=form.video_link.data or "",
                cutoff_days=form.cutoff_days.data, dossier_days=form.dossier_days.data)
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            flash(f"Calendrier enregistré ; {len(created)} séance(s) planifiée(s) sur trois mois.",
                  "success")
            return redirect(url_for("meetings.index"))
    return render_template("meetings/schedule.html", form=form, circ=circ)


# -- members --------------------------------------------------------------------------------
@bp.route("/membres/<int:circ_id>", methods=["GET", "POST"])
@role_required("facilitator")
def members(circ_id: int):
    circ = _circonscription_in_scope(circ_id)
    form = MemberForm()
    structures = db().scalars(select(Structure).where(Structure.active.is_(True))
                              .order_by(Structure.name)).all()
    form.structure_id.choices = choices([(0, "—"), *((s.id, s.name) for s in structures)])
    if form.validate_on_submit():
        try:
            domain.add_member(db(), vault(), circ, structure_id=form.structure_id.data or None,
                              name=form.name.data, function=form.function.data or "",
                              kind=form.kind.data, acco_glo=form.acco_glo.data == "oui",
                              email=form.email.data or "")
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            flash("Membre ajouté.", "success")
            return redirect(url_for("meetings.members", circ_id=circ.id))
    rows = db().scalars(select(Member).where(Member.circonscription_id == circ.id)
                        .order_by(Member.active.desc(), Member.name)).all()
    return render_template("meetings/members.html", circ=circ, form=form, rows=rows,
                           toggle=FlaskForm())


@bp.route("/membres/<int:circ_id>/<int:member_id>/<any(activer, desactiver):action>",
          methods=["POST"])
@role_required("facilitator")
def member_toggle(circ_id: int, member_id: int, action: str):
    circ = _circonscription_in_scope(circ_id)
    member = db().get(Member, member_id)
    if member is None or member.circonscription_id != circ.id:
        abort(404)
    domain.set_member_active(db(), vault(), member, action == "activer")
    db().commit()
    flash("Membre réactivé." if member.active else "Membre désactivé.", "success")
    return redirect(url_for("meetings.members", circ_id=circ.id))


@bp.route("/membres/<int:circ_id>/<int:member_id>/suppleant", methods=["POST"])
@role_required("facilitator")
def member_substitute(circ_id: int, member_id: int):
    """Name a member's suppléant·e (invited in their place when they decline), or none."""
    circ = _circonscription_in_scope(circ_id)
    member = db().get(Member, member_id)
    if member is None or member.circonscription_id != circ.id:
        abort(404)
    chosen = request.form.get("substitute_id", type=record_id)  # « — » (0): none
    substitute = db().get(Member, chosen) if chosen else None
    try:
        domain.set_substitute(db(), vault(), member, substitute)
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
    else:
        db().commit()
        flash("Suppléance enregistrée.", "success")
    return redirect(url_for("meetings.members", circ_id=circ.id))


# -- the session page -------------------------------------------------------------------------
@bp.route("/<int:meeting_id>")
@role_required("facilitator")
def show(meeting_id: int):
    meeting = meeting_in_scope(meeting_id)
    send_pending(meeting.id)
    allowed = domain.allowed_actions(meeting)
    inscribe = InscribeForm()
    on_agenda = {i.sheet.beneficiary_id for i in meeting.items
                 if i.sheet is not None and i.outcome != "ajourne"}
    candidates = domain.candidate_sheets(db(), meeting)
    returning = returns.returning_sheet_ids(db(), [s.id for s in candidates])
    inscribe.sheet_id.choices = choices(
        (s.id, f"{s.reference} – {s.beneficiary.pseudonym}"
               f"{' (ajournée)' if s.status == 'ajournee' else ''}"
               f"{' (retour en instance)' if s.id in returning else ''}"
               f"{' (même personne qu’un point inscrit)' if s.beneficiary_id in on_agenda else ''}")
        for s in candidates)
    adjourn = AdjournForm()
    adjourn.target_id.choices = choices([(0, "Non : proposée à la prochaine séance"), *(
        (m.id, m.starts_at.strftime("%d/%m/%Y")) for m in _other_open_meetings(meeting))])
    labels = reference_labels(db())
    decisions = {d.sheet_id: d for d in meeting_decisions(meeting)}
    # Part 4 of the agenda: the préconisations of earlier sessions still open.
    follow_up = [(a, vault().open(a, "label"))
                 for a in domain.open_actions(db(), {meeting.circonscription_id})
                 if a.decision.meeting_id != meeting.id]
    return render_template(
        "meetings/show.html", meeting=meeting, allowed=allowed, parts=AGENDA_PARTS,
        jobs=documents.latest_jobs(db(), meeting.id), kinds=DOCUMENT_KINDS, form=FlaskForm(),
        kind_states=documents.KIND_STATES,
        per_sheet=PER_SHEET_KINDS | SHEET_ONLY_KINDS, pdf_note=not heartbeat.pdf_available(db()),
        reason_form=ReasonForm(), postpone_form=PostponeForm(), item_form=ItemForm(),
        inscribe_form=inscribe, adjourn_form=adjourn, answers=ANSWERS, attendance=ATTENDANCE,
        counts=domain.attendance_counts(meeting), deadlines=domain.deadlines(meeting),
        icag_kinds=ICAG_KINDS, labels=labels, decisions=decisions,
        same_person=domain.same_person_items(meeting),
        transitions=domain.TRANSITIONS, director_actions=domain.DIRECTOR_ACTIONS,
        secretaries=(domain.secretary_choices(db(), meeting) if "hold" in allowed else []),
        secretary=domain.secretary_label(db(), meeting),
        corrections=documents.minutes_corrections(db(), meeting), institutions=INSTITUTIONS,
        today=date.today(), follow_up=follow_up,
        proposed_returns=returns.proposed_returns(db(), meeting),
        feedback_sheets=[db().get(Sheet, sheet_id)
                         for sheet_id in documents.feedback_sheet_ids(db(), meeting)],
        never_produced=(documents.never_produced(db(), meeting)
                        if "finish_avis" in allowed else []),
        archive_copies=meeting.state in documents.AFTER_AVIS,
        revision_kind=avis_domain.revision_kind(meeting.state), formal=FORMAL_DECISION,
        icag_steps=icag.steps_of_meeting(db(), meeting),
        outcome_open=meeting.state in partnership.OUTCOME_STATES,
        structure_names=db().scalars(select(Structure.name).where(Structure.active.is_(True))
                                     .order_by(Structure.name)).all())


def meeting_decisions(meeting: Meeting) -> list[Decision]:
    return db().scalars(select(Decision).where(Decision.meeting_id == meeting.id)).all()


def _other_open_meetings(meeting: Meeting) -> list[Meeting]:
    return list(db().scalars(select(Meeting).where(
        Meeting.circonscription_id == meeting.circonscription_id, Meeting.id != meeting.id,
        Meeting.state.in_(("planifiee", "odj_en_construction", "convoquee")),
        Meeting.starts_at > meeting.starts_at).order_by(Meeting.starts_at)))


@bp.route("/<int:meeting_id>/etat/<action>", methods=["POST"])
@role_required("facilitator")
def change_state(meeting_id: int, action: str):
    meeting = meeting_in_scope(meeting_id)
    # Postponing needs a date; the minutes are signed (or sent back for correction) by the
    # directors only.
    if action not in domain.TRANSITIONS or action == "postpone" \
            or action in domain.DIRECTOR_ACTIONS:
        abort(404)
    form = ReasonForm()
    reason = (form.reason.data or "") if form.validate() else ""
    try:
        domain.transition(db(), vault(), meeting, action, reason=reason,
                          dismissals=_dismissals(),
                          secretary=request.form.get("secretary", "") if action == "hold"
                          else None)
    except TextsNeedReviewError as exc:
        return _review_page(meeting, exc, title="Motif à reformuler",
                            fields=_reason_field("Motif", reason), hidden={})
    except DomainError as exc:
        return _refused(meeting, exc)
    return _done(meeting, f"Séance : {meeting.state_label}.")


@bp.route("/<int:meeting_id>/reporter", methods=["POST"])
@role_required("facilitator")
def postpone(meeting_id: int):
    meeting = meeting_in_scope(meeting_id)
    form = PostponeForm()
    new_start = _parse_day(form.day.data or "", form.at.data or "00:00") if form.validate() \
        else None
    if new_start is None:
        flash("Indiquez la nouvelle date et l'heure de la séance.", "error")
        return redirect(url_for("meetings.show", meeting_id=meeting.id))
    try:
        replacement = domain.postpone(db(), vault(), meeting, new_start, form.reason.data or "",
                                      _dismissals())
    except TextsNeedReviewError as exc:
        return _review_page(meeting, exc, title="Motif du report à reformuler",
                            fields=_reason_field(form.reason.label.text, form.reason.data or ""),
                            hidden={"day": form.day.data or "", "at": form.at.data or ""})
    except DomainError as exc:
        return _refused(meeting, exc)
    db().commit()
    flash("Séance reportée : les points en attente ont été repris à la nouvelle date.",
          "success")
    return redirect(url_for("meetings.show", meeting_id=replacement.id))


# -- agenda -----------------------------------------------------------------------------------
@bp.route("/<int:meeting_id>/points", methods=["POST"])
@role_required("facilitator")
def add_item(meeting_id: int):
    meeting = meeting_in_scope(meeting_id)
    form = ItemForm()
    try:
        if not form.validate():
            raise DomainError("La durée est un nombre entier de minutes." if form.duration.errors
                              else "L'intitulé fait 200 caractères au plus ; la structure et "
                                   "la fonction, 160.")
        domain.add_partnership_item(
            db(), vault(), meeting, form.title.data or "",
            presenter_structure=form.presenter_structure.data or "",
            presenter_role=form.presenter_role.data or "", time_slot=form.slot.data or "",
            duration_minutes=20 if form.duration.data is None else form.duration.data,
            dismissals=_dismissals())
    except TextsNeedReviewError as exc:
        return _review_page(
            meeting, exc, title="Point à reformuler",
            fields=[ReviewField("title", form.title.label.text, form.title.data or "",
                                domain.TEXT_LIMIT),
                    ReviewField("presenter_structure", form.presenter_structure.label.text,
                                form.presenter_structure.data or "", domain.PRESENTER_LIMIT),
                    ReviewField("presenter_role", form.presenter_role.label.text,
                                form.presenter_role.data or "", domain.PRESENTER_LIMIT)],
            hidden={"duration": request.form.get("duration", ""),
                    "slot": request.form.get("slot", "")})
    except DomainError as exc:
        return _refused(meeting, exc, "#odj")
    return _done(meeting, "Point ajouté à l'ordre du jour.", "#odj")


@bp.route("/<int:meeting_id>/inscrire", methods=["POST"])
@role_required("facilitator")
def inscribe(meeting_id: int):
    meeting = meeting_in_scope(meeting_id)
    form = InscribeForm()
    sheet = db().get(Sheet, request.form.get("sheet_id", type=record_id) or 0)
    if sheet is None:
        flash("Choisissez une fiche recevable.", "error")
        return redirect(url_for("meetings.show", meeting_id=meeting.id) + "#odj")
    if sheet.circonscription_id != meeting.circonscription_id:
        abort(404)
    try:
        domain.inscribe_sheet(db(), vault(), meeting, sheet, form.time_slot.data or "",
                              part=form.part.data or "situation",
                              icag_kind=form.icag_kind.data or "",
                              same_person_confirmed=form.same_person_confirmed.data)
    except DomainError as exc:
        return _refused(meeting, exc, "#odj")
    return _done(meeting, f"Fiche {sheet.reference} inscrite.", "#odj")


@bp.route("/<int:meeting_id>/points/<int:item_id>/<any(monter, descendre):direction>",
          methods=["POST"])
@role_required("facilitator")
def move_item(meeting_id: int, item_id: int, direction: str):
    meeting = meeting_in_scope(meeting_id)
    try:
        domain.move_item(db(), vault(), meeting, item_id, -1 if direction == "monter" else 1)
    except DomainError as exc:
        return _refused(meeting, exc, "#odj")
    return _done(meeting, "Ordre du jour réordonné.", "#odj")


@bp.route("/<int:meeting_id>/points/<int:item_id>/retirer", methods=["POST"])
@role_required("facilitator")
def remove_item(meeting_id: int, item_id: int):
    meeting = meeting_in_scope(meeting_id)
    try:
        domain.remove_item(db(), vault(), meeting, item_id)
    except DomainError as exc:
        return _refused(meeting, exc, "#odj")
    return _done(meeting, "Point retiré de l'ordre du jour.", "#odj")


@bp.route("/<int:meeting_id>/points/<int:item_id>/ajourner", methods=["POST"])
@role_required("facilitator")
def adjourn(meeting_id: int, item_id: int):
    meeting = meeting_in_scope(meeting_id)
    form = AdjournForm()
    target_id = request.form.get("target_id", type=record_id) or 0
    target = meeting_in_scope(target_id) if target_id else None
    try:
        domain.adjourn(db(), vault(), meeting, item_id, form.reason.data or "", target,
                       dismissals=_dismissals())
    except TextsNeedReviewError as exc:
        return _review_page(meeting, exc, title="Motif d'ajournement à reformuler",
                            fields=_reason_field(form.reason.label.text, form.reason.data or ""),
                            hidden={"target_id": str(target_id)})
    except DomainError as exc:
        return _refused(meeting, exc, "#odj")
    return _done(meeting, "Situation ajournée : elle sera proposée à nouveau.", "#odj")


# -- answers, attendance ----------------------------------------------------------------------
def _member_entries(meeting: Meeting, prefix: str) -> dict[int, tuple[str, str]]:
    return {row.id: (request.form.get(f"{prefix}_{row.id}", ""),
                     request.form.get(f"replacement_{row.id}", ""))
            for row in meeting.members if f"{prefix}_{row.id}" in request.form}


@bp.route("/<int:meeting_id>/reponses", methods=["POST"])
@role_required("facilitator")
def answers(meeting_id: int):
    meeting = meeting_in_scope(meeting_id)
    try:
        domain.record_answers(db(), vault(), meeting, _member_entries(meeting, "answer"))
    except DomainError as exc:
        return _refused(meeting, exc, "#membres")
    return _done(meeting, "Réponses aux invitations enregistrées.", "#membres")


@bp.route("/<int:meeting_id>/presences", methods=["POST"])
@role_required("facilitator")
def attendance(meeting_id: int):
    meeting = meeting_in_scope(meeting_id)
    try:
        domain.record_attendance(db(), vault(), meeting,
                                 _member_entries(meeting, "attendance"))
    except DomainError as exc:
        return _refused(meeting, exc, "#membres")
    return _done(meeting, "Présences enregistrées.", "#membres")


# -- examination ----------------------------------------------------------------------------
@bp.route("/<int:meeting_id>/points/<int:item_id>/avis", methods=["GET", "POST"])
@role_required("facilitator")
def avis(meeting_id: int, item_id: int):
    meeting = meeting_in_scope(meeting_id)
    item = next((i for i in meeting.items if i.id == item_id and i.sheet is not None), None)
    if item is None:
        abort(404)
    labels = reference_labels(db(), active_only=True)
    form = AvisForm()
    form.avis.choices = choices([("", "—"), *labels["avis"].items()])
    structures = db().scalars(select(Structure).where(Structure.active.is_(True))
                              .order_by(Structure.name)).all()
    review = None  # the caught words, highlighted, once texts were refused
    if form.validate_on_submit():
        try:
            actions = _actions_from_request()
            come_back = _optional_date(form.come_back_on.data, "Date de retour en instance")
            domain.record_avis(db(), vault(), meeting, item.id, avis=form.avis.data or "",
                               avis_codes=set(labels["avis"]),
                               motivation=form.motivation.data or "", actions=actions,
                               come_back_on=come_back,
                               formal_decision_by=form.formal_decision_by.data or "",
                               dismissals=_dismissals())
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
            review = exc if isinstance(exc, TextsNeedReviewError) else None
        else:
            return _done(meeting, f"Avis enregistré pour {item.sheet.reference}.", "#odj")
    return render_template("meetings/avis.html", meeting=meeting, item=item, form=form,
                           structures=structures, rows=ACTION_ROWS, review=review,
                           reasons=DISMISS_REASONS,
                           allowed=domain.allowed_actions(meeting))


def _decision_of(meeting: Meeting, item_id: int) -> tuple[AgendaItem, Decision | None]:
    item = next((i for i in meeting.items if i.id == item_id and i.sheet is not None), None)
    if item is None:
        abort(404)
    return item, db().scalar(select(Decision).where(Decision.meeting_id == meeting.id,
                                                    Decision.sheet_id == item.sheet_id))


def _avis_values(decision: Decision) -> dict[str, str]:
    """The avis being corrected, as the form's préconisation rows show it."""
    values = {}
    labels = vault().open_many(decision.actions, ["label"]) if decision.actions else []
    for row, (action, secret) in enumerate(zip(decision.actions, labels, strict=True)):
        values[f"action_{row}_label"] = secret["label"].reveal() if secret["label"] else ""
        values[f"action_{row}_owner"] = str(action.owner_structure_id or "")
        values[f"action_{row}_due"] = action.due_on.isoformat() if action.due_on else ""
    return values


@bp.route("/<int:meeting_id>/points/<int:item_id>/corriger", methods=["GET", "POST"])
@role_required("facilitator")
def correct_avis(meeting_id: int, item_id: int):
    meeting = meeting_in_scope(meeting_id)
    item, decision = _decision_of(meeting, item_id)
    kind = avis_domain.revision_kind(meeting.state)
    if decision is None or kind is None:
        flash("Cet avis ne peut pas être corrigé maintenant (pas d'avis, ou procès-verbal en "
              "signature).", "error")
        return redirect(url_for("meetings.show", meeting_id=meeting.id) + "#odj")
    labels = reference_labels(db(), active_only=True)
    if request.method == "POST":
        form = CorrectionForm()
    else:  # the current avis, to be corrected
        motivation = vault().open(decision, "motivation")
        form = CorrectionForm(data={
            "avis": decision.avis, "formal_decision_by": decision.formal_decision_by,
            "come_back_on": decision.come_back_on.isoformat() if decision.come_back_on else "",
            "motivation": motivation.reveal() if motivation is not None else ""})
    form.avis.choices = choices([("", "—"), *labels["avis"].items()])
    structures = db().scalars(select(Structure).where(Structure.active.is_(True))
                              .order_by(Structure.name)).all()
    review = None  # the caught words, highlighted, once texts were refused
    if form.validate_on_submit():
        try:
            avis_domain.correct(
                db(), vault(), decision, avis=form.avis.data or "",
                avis_codes=set(labels["avis"]), motivation=form.motivation.data or "",
                actions=_actions_from_request(),
                come_back_on=_optional_date(form.come_back_on.data,
                                            "Date de retour en instance"),
                formal_decision_by=form.formal_decision_by.data or "",
                reason=form.reason.data or "", dismissals=_dismissals())
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
            review = exc if isinstance(exc, TextsNeedReviewError) else None
        else:
            return _done(meeting, f"Erratum publié pour {item.sheet.reference} : le nouveau "
                                  "procès-verbal attend les visas." if kind == "erratum"
                         else f"Avis corrigé pour {item.sheet.reference}.", "#odj")
    values = request.form if request.method == "POST" else _avis_values(decision)
    versions = avis_domain.previous_versions(vault(), decision)
    db().commit()  # the audit rows of the reads above
    return render_template("meetings/correct_avis.html", meeting=meeting, item=item, form=form,
                           structures=structures, rows=ACTION_ROWS, review=review,
                           reasons=DISMISS_REASONS, values=values, kind=kind,
                           versions=versions, labels=labels, kinds=REVISION_KINDS)


@bp.route("/<int:meeting_id>/points/<int:item_id>/decision-formelle", methods=["GET", "POST"])
@role_required("facilitator")
def formal_decision(meeting_id: int, item_id: int):
    meeting = meeting_in_scope(meeting_id)
    _item, decision = _decision_of(meeting, item_id)
    if decision is None or decision.formal_state != "en_attente":
        flash("Aucune décision formelle n'est attendue pour cette situation.", "error")
        return redirect(url_for("meetings.show", meeting_id=meeting.id) + "#odj")
    form = FormalDecisionForm()
    review = None  # the caught words, highlighted, once texts were refused
    if form.validate_on_submit():
        try:
            decisions.record(db(), vault(), decision, outcome=form.outcome.data or "",
                             decided_on=_optional_date(form.decided_on.data,
                                                       "Date de la décision"),
                             author=form.author.data or "", detail=form.detail.data or "",
                             actor_id=current_user.id, dismissals=_dismissals())
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
            review = exc if isinstance(exc, TextsNeedReviewError) else None
        else:
            return _done(meeting, f"Décision formelle enregistrée pour "
                                  f"{decision.sheet.reference} : la fiche retour est mise à "
                                  "jour.", "#odj")
    return render_template("meetings/formal_decision.html", meeting=meeting, decision=decision,
                           form=form, labels=reference_labels(db()), formal=FORMAL_DECISION,
                           review=review, reasons=DISMISS_REASONS)


def _optional_date(value: str | None, label: str) -> date | None:
    if not value:
        return None
    try:
        return parse_date(value)
    except ValueError:
        raise DomainError(f"{label} : date invalide (JJ/MM/AAAA).") from None


def _actions_from_request() -> list[domain.ActionInput]:
    actions = []
    for row in range(ACTION_ROWS):
        label = (request.form.get(f"action_{row}_label") or "").strip()
        if not label:
            continue
        owner = request.form.get(f"action_{row}_owner", type=record_id) or None
        due = _optional_date(request.form.get(f"action_{row}_due"), "Échéance d'une action")
        actions.append(domain.ActionInput(label, owner, due))
    return actions


# -- documents --------------------------------------------------------------------------------
def _sheet_of_meeting(meeting: Meeting, sheet_id: int | None) -> Sheet | None:
    if not sheet_id:
        return None
    if not any(i.sheet_id == sheet_id for i in meeting.items):
        abort(404)
    return db().get(Sheet, sheet_id)


@bp.route("/<int:meeting_id>/documents/<kind>", methods=["POST"])
@role_required("facilitator")
def generate(meeting_id: int, kind: str):
    meeting = meeting_in_scope(meeting_id)
    if kind not in DOCUMENT_KINDS:
        abort(404)
    sheet = _sheet_of_meeting(meeting, request.form.get("sheet_id", type=record_id))
    try:
        documents.ask_for_document(db(), vault(), meeting, kind, sheet,
                                   rebuild=request.form.get("rebuild") == "1")
    except DomainError as exc:
        db().commit()  # a refused dossier keeps the review counts of its texts
        flash(exc.message, "error")
        return redirect(url_for("meetings.show", meeting_id=meeting.id) + "#documents")
    db().commit()  # the outbox row exists before anything is sent to Redis
    send_pending(meeting.id)
    flash(f"{DOCUMENT_KINDS[kind]} : génération demandée.", "success")
    return redirect(url_for("meetings.show", meeting_id=meeting.id) + "#documents")


@bp.route("/<int:meeting_id>/documents/<kind>/statut")
@role_required("facilitator")
def job_status(meeting_id: int, kind: str):
    meeting = meeting_in_scope(meeting_id)
    subject = str(request.args.get("fiche", type=record_id) or "")
    job = documents.latest_jobs(db(), meeting.id).get((kind, subject)) or abort(404)
    return {"status": job.status, "label": job.status_label, "step": job.step,
            "error": job.error_message or "",
            "download": url_for("meetings.download", document_id=job.document_id)
            if job.document_id else ""}


@bp.route("/documents/<int:document_id>")
@role_required("facilitator")
def download(document_id: int):
    document = db().get(GeneratedDocument, document_id)
    if document is None or document.meeting_id is None:  # a sheet's note is the referent's
        abort(404)
    meeting_in_scope(document.meeting_id)
    return send_document(document, request.args.get("format") == "pdf")


def send_document(document: GeneratedDocument, as_pdf: bool):
    """Decrypt and stream one file, audited before it leaves (rule 10: no file on disk)."""
    try:
        body = documents.download(vault(), document, pdf=as_pdf)
    except NotFoundError:
        abort(404)
    db().commit()
    return file_response(document, body, as_pdf)


def file_response(document: GeneratedDocument, body: bytes, as_pdf: bool):
    """A decrypted document as a download, from memory."""
    name = document.filename.removesuffix(".docx") + ".pdf" if as_pdf else document.filename
    return send_file(io.BytesIO(body), as_attachment=True, download_name=name, max_age=0,
                     mimetype="application/pdf" if as_pdf else document.media_type)


@bp.route("/<int:meeting_id>/archive")
@role_required("facilitator")
def archive(meeting_id: int):
    """The session's archive: its documents in their approved version (Word and PDF) and a
    CSV of the decisions, by reference only."""
    meeting = meeting_in_scope(meeting_id)
    body = documents.meeting_archive(db(), vault(), meeting)
    db().commit()
    return send_file(io.BytesIO(body), mimetype="application/zip", as_attachment=True,
                     max_age=0, download_name=f"archive-seance-{meeting.starts_at:%Y-%m-%d}.zip")


from intake.meetings import icag_views  # noqa: E402,F401  (its routes join this blueprint)
