"""Situation sheets: referents file and follow them, facilitators screen them."""

from __future__ import annotations

import io
from datetime import date, datetime

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import MultiDict

from intake.access import role_required
from intake.dates import paris_time
from intake.dbsession import db, services, vault
from intake.errors import error_page
from intake.meetings.views import send_document, send_pending
from intake.sheets.forms import (
    ACTION_LABELS,
    IDENTITY_LABELS,
    ReasonForm,
    ScreeningForm,
    fill_form,
    identity_form_class,
    identity_from_form,
    sheet_form_class,
    values_from_form,
)
from shared import deidentify
from shared.domain import access_export as right_of_access
from shared.domain import documents, sheet_editing, sheet_reading
from shared.domain import sheet_workflow as workflow
from shared.domain import sheets as domain
from shared.domain.beneficiaries import REQUIRED_IDENTITY, IdentityInvalidError
from shared.domain.reference import reference_labels
from shared.domain.sheet_lists import SORTS, SheetFilters, sheet_page
from shared.errors import DomainError
from shared.models import (
    GeneratedDocument,
    Sheet,
    Structure,
)
from shared.models.meeting import FORMAL_DECISION
from shared.models.sheet import SHEET_STATES
from shared.sheet_schema import FIELDS, FIELDS_BY_NAME, INTENSITE, SECTIONS
from shared.text import CONTROL, canonical

bp = Blueprint("sheets", __name__, url_prefix="/fiches")

PAGE_SIZE = 50


# -- helpers -------------------------------------------------------------------------------
def _sheet_for_referent(sheet_id: int) -> Sheet:
    sheet = db().get(Sheet, sheet_id)
    if sheet is None or not domain.referent_may_edit(current_user, sheet):
        abort(404)
    return sheet


def _sheet_for_facilitator(sheet_id: int) -> Sheet:
    """Screening and identity reveal: the facilitator's scope only, never the referent's."""
    sheet = db().get(Sheet, sheet_id)
    if sheet is None or not domain.facilitator_may_see(current_user, sheet):
        abort(404)
    return sheet


def _sheet_for_viewer(sheet_id: int) -> Sheet:
    # The page names the sheet's structure and circonscription: loaded with it.
    sheet = db().get(Sheet, sheet_id, options=[joinedload(Sheet.structure),
                                               joinedload(Sheet.circonscription)])
    if sheet is None:
        abort(404)
    if current_user.has_role("referent") and domain.referent_may_edit(current_user, sheet):
        return sheet
    if current_user.has_role("facilitator") and domain.facilitator_may_see(current_user, sheet):
        return sheet
    abort(404)


def _labels() -> dict[str, dict[str, str]]:
    return reference_labels(db())


def _referent_structure() -> Structure:
    structure_ids = sorted(current_user.structure_ids)
    return db().get(Structure, structure_ids[0])


# -- lists --------------------------------------------------------------------------------
@bp.route("/")
@role_required("referent", "facilitator")
def index():
    as_facilitator = current_user.has_role("facilitator") and (
        request.args.get("vue") == "instance" or not current_user.has_role("referent"))
    base = (domain.facilitator_sheets_query(current_user) if as_facilitator
            else domain.referent_sheets_query(current_user))
    state = request.args.get("etat", "")
    if state not in SHEET_STATES:
        # The facilitator's inbox opens on the sheets to screen.
        state = "soumise" if as_facilitator and "etat" not in request.args else ""
    since, since_error = _day_argument("du")
    until, until_error = _day_argument("au")
    filters = SheetFilters(
        state=state, search=CONTROL.sub("", request.args.get("q", "")).strip()[:40],
        structure_id=request.args.get("structure", type=int),
        meeting_id=request.args.get("seance", type=int), since=since, until=until,
        sort=request.args.get("tri", "maj") if request.args.get("tri") in SORTS else "maj")
    listed = sheet_page(db(), base, filters, request.args.get("page", 1, type=int))
    query = {name: value for name, value in request.args.items() if name != "page" and value}
    return render_template("sheets/index.html", listed=listed, filters=filters,
                           states=SHEET_STATES, sorts=SORTS, as_facilitator=as_facilitator,
                           labels=_labels(), query=query,
                           date_errors={"du": since_error, "au": until_error})


def _day_argument(name: str) -> tuple[date | None, str]:
    """A day typed in a filter (the browser's yyyy-mm-dd, or dd/mm/yyyy), or its error."""
    typed = request.args.get(name, "").strip()
    if not typed:
        return None, ""
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(typed, pattern).date(), ""
        except ValueError:
            continue
    return None, "Date non reconnue : saisissez-la sous la forme jj/mm/aaaa."


# -- creating -------------------------------------------------------------------------------
@bp.route("/nouvelle", methods=["GET", "POST"])
@role_required("referent")
def new():
    form = identity_form_class()()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        identity = identity_from_form(form)
        try:
            started = domain.start_sheet(db(), vault(), structure=_referent_structure(),
                                         author_id=current_user.id, identity=identity,
                                         index_bits=services().settings.index_bits)
        except IdentityInvalidError as exc:
            db().rollback()
            errors = exc.errors
        except DomainError as exc:
            db().rollback()
            flash(exc.message, "error")
        else:
            db().commit()
            if started.notice:
                flash(started.notice, "info")
            flash(f"Brouillon {started.sheet.reference} créé. Complétez la fiche.", "success")
            if started.differences:
                return _identity_choice_page(started.sheet, {
                    name: getattr(identity, name) for name in started.differences})
            return redirect(url_for("sheets.edit", sheet_id=started.sheet.id))
    return render_template("sheets/new.html", form=form, errors=errors, labels=IDENTITY_LABELS,
                           required_identity=REQUIRED_IDENTITY)


def _identity_choice_page(sheet: Sheet, typed: dict[str, str], status: int = 200):
    """Stored and typed values side by side (issue 15); the stored ones are the referent's
    own structure's record, shown as on the sheet's page."""
    stored = domain.sheet_identity(db(), vault(), sheet,
                                   "choix entre identité enregistrée et saisie")
    db().commit()  # the decryption audit row
    return render_template("sheets/identity_choice.html", sheet=sheet, typed=typed,
                           stored=stored, labels=IDENTITY_LABELS, form=FlaskForm()), status


@bp.route("/<int:sheet_id>/identite/choix", methods=["POST"])
@role_required("referent")
def identity_choice(sheet_id: int):
    """Per differing field, keep the stored value or update it with the typed one."""
    sheet = _sheet_for_referent(sheet_id)
    form = FlaskForm()
    typed = {name: canonical(request.form.get(f"typed_{name}", "")).strip()
             for name in IDENTITY_LABELS if f"typed_{name}" in request.form}
    choices = {name: request.form.get(f"choice_{name}") for name in typed}
    if not form.validate() or any(c not in ("update", "keep") for c in choices.values()):
        flash("Choisissez, pour chaque information, de garder la valeur enregistrée ou de "
              "la mettre à jour.", "error")
        return _identity_choice_page(sheet, typed, 400)
    try:
        domain.choose_identity_values(
            db(), vault(), sheet, typed,
            {name for name, choice in choices.items() if choice == "update"},
            index_bits=services().settings.index_bits)
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        return _identity_choice_page(sheet, typed, 400)
    db().commit()
    flash("Identité de la personne : votre choix est enregistré.", "success")
    return redirect(url_for("sheets.edit", sheet_id=sheet.id))


# -- editing ---------------------------------------------------------------------------------
@bp.route("/<int:sheet_id>/modifier", methods=["GET", "POST"])
def edit(sheet_id: int):
    if not current_user.is_authenticated:
        if request.method == "POST":
            return stash_and_relogin(sheet_id)
        return redirect(url_for("auth.login", next=request.path))
    if not current_user.has_role("referent"):
        abort(403)
    sheet = _sheet_for_referent(sheet_id)
    try:
        opened = sheet_editing.open_sheet(db(), vault(), sheet,
                                          display=request.method == "GET",
                                          stash_token=_stash_token(sheet))
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(url_for("sheets.show", sheet_id=sheet.id))
    form = sheet_form_class(opened.offered)()
    errors: dict[str, str] = {}
    hits: dict[str, list[str]] = {}
    shown = opened.stored
    autosave = request.form.get("action") == "autosave"
    if form.is_submitted() and not form.validate():
        # Only transport limits fail here (5,000 characters); nothing is quoted back.
        errors = {name: "Texte trop long." for name in form.errors if name != "csrf_token"}
        if autosave:
            return _autosave_answer(sheet, None)
    elif form.is_submitted():
        values, form_errors = values_from_form(form)
        submit = request.form.get("action") == "submit"
        finding = "" if autosave else request.form.get("finding", "")
        saved = sheet_editing.save(db(), vault(), opened, values, identity_from_form(form),
                                   form_errors=form_errors, finding=finding, submit=submit,
                                   actor_id=current_user.id,
                                   index_bits=services().settings.index_bits)
        db().commit()  # the draft is saved even when its submission is refused
        if autosave:
            return _autosave_answer(sheet, saved)
        errors, hits, shown = saved.errors, saved.hits, saved.values
        if saved.partly_saved:
            flash("Brouillon enregistré, sauf les champs signalés : corrigez-les puis "
                  "enregistrez de nouveau.", "info")
        if saved.finding_gone:
            flash("Le texte a changé depuis l'affichage : vérifiez les éléments signalés.",
                  "info")
        if saved.refusal:
            flash(saved.refusal, "error")
        if saved.submitted:
            send_pending()  # the facilitators' e-mails
            flash(f"Fiche {sheet.reference} actualisée : elle est proposée à nouveau à "
                  "l'instance." if saved.returning
                  else f"Fiche {sheet.reference} soumise à l'instance.", "success")
            return redirect(url_for("sheets.show", sheet_id=sheet.id))
        if saved.saved and not submit:
            flash(f"Brouillon enregistré à {_saved_at(sheet)}.", "success")
            return redirect(url_for("sheets.edit", sheet_id=sheet.id) + _anchor(finding))
    if errors:
        flash("La fiche contient des erreurs : corrigez les champs signalés.", "error")
    if opened.restored is not None:
        form.process(formdata=MultiDict(opened.restored))
        flash("Votre saisie précédente a été restaurée : vérifiez-la puis enregistrez.", "info")
    elif opened.identity is not None:
        fill_form(form, opened.stored, opened.identity)
    db().commit()  # the decryption audit rows
    return render_template("sheets/edit.html", sheet=sheet, form=form, errors=errors, hits=hits,
                           sections=SECTIONS, fields=FIELDS, identity_labels=IDENTITY_LABELS,
                           labels=opened.offered, saved_at=_saved_at(sheet),
                           ticket=stash_ticket(sheet), review=_review(shown),
                           autosave_seconds=AUTOSAVE_SECONDS, required_identity=REQUIRED_IDENTITY)


def _saved_at(sheet: Sheet) -> str:
    return paris_time(sheet.updated_at, "%H h %M")


# The edit page saves the draft by itself (static/app.js) this often while it is being typed
# in, and when the page is left: on the server, as any save (encrypted, audited); the
# browser keeps nothing.
AUTOSAVE_SECONDS = 30


def _autosave_answer(sheet: Sheet, saved: sheet_editing.Saved | None):
    """What the page's script shows after a save it made itself (no flash message: no
    page follows it)."""
    if saved is None or not (saved.saved or saved.partly_saved):
        return {"saved": False,
                "message": "Enregistrement automatique impossible : un texte dépasse la "
                           "longueur permise. Enregistrez le brouillon avec le bouton."}
    if saved.partly_saved:
        return {"saved": True,
                "message": f"Enregistré à {_saved_at(sheet)}, sauf les champs en erreur : "
                           "enregistrez le brouillon avec le bouton pour les voir."}
    return {"saved": True, "message": f"Enregistré à {_saved_at(sheet)}"}


def _review(values: dict) -> dict:
    """What the de-identification panels show: each unit's highlighted text and findings."""
    texts = deidentify.text_units(values)
    return {unit: {"segments": deidentify.segments(texts[unit], found), "findings": found,
                   "label": _unit_label(unit),
                   "open": sum(not f.dismissed for f in found)}
            for unit, found in deidentify.findings(values).items()}


def _unit_label(unit: str) -> str:
    spec = FIELDS_BY_NAME.get(unit)
    if spec is not None:
        return spec.label
    _, row, key = unit.split("_", 2)
    return f"Actions engagées, ligne {int(row) + 1} ({ACTION_LABELS[key].lower()})"


def _anchor(decision: str) -> str:
    """Back to the field whose finding was just handled."""
    unit = decision.partition("|")[2].split(":", 1)[0]
    return f"#revue-{unit}" if unit else ""


edit.required_roles = ("referent",)  # checked inside: an anonymous POST is stashed first


# -- session expiry: keep what was typed --------------------------------------------------------
# The edit form carries a ticket signed with the app secret (user, sheet, 24 h). A POST whose
# session expired is stashed only with a valid ticket for that sheet, and restored only to
# that user: a forged cross-site POST cannot plant text in someone's form.
STASH_SALT = "icli.sheet-stash.v1"


def stash_ticket(sheet: Sheet) -> str:
    serializer = URLSafeTimedSerializer(current_app.secret_key, salt=STASH_SALT)
    return serializer.dumps({"u": current_user.id, "s": sheet.id})


def _ticket_owner(sheet_id: int) -> int | None:
    serializer = URLSafeTimedSerializer(current_app.secret_key, salt=STASH_SALT)
    try:
        data = serializer.loads(request.form.get("stash_ticket", ""),
                                max_age=int(sheet_editing.STASH_LIFETIME.total_seconds()))
    except BadSignature:
        return None
    return data["u"] if data.get("s") == sheet_id else None


def stash_and_relogin(sheet_id: int):
    """Keep the form of an expired session, encrypted, and send the user to log in again."""
    user_id = _ticket_owner(sheet_id)
    pairs = [(k, v) for k, v in request.form.items(multi=True)
             if k not in ("csrf_token", "stash_ticket")]
    try:
        if user_id is None:
            raise DomainError("no valid ticket")
        token = sheet_editing.stash_form(db(), vault(), sheet_id=sheet_id, user_id=user_id,
                                         pairs=pairs)
    except DomainError:
        db().rollback()
        return error_page(400, "Formulaire expiré", "Le formulaire a expiré ou n'est pas "
                          "valide. Rechargez la page et recommencez : rien n'a été enregistré.")
    db().commit()
    session["stash"] = {"token": token, "sheet": sheet_id}
    edit_url = url_for("sheets.edit", sheet_id=sheet_id)
    if current_user.is_authenticated:  # the form had expired, not the session
        return redirect(edit_url)
    flash("Votre session a expiré. Ce que vous aviez saisi est conservé : reconnectez-vous "
          "pour le retrouver.", "info")
    return redirect(url_for("auth.login", next=edit_url))


def _stash_token(sheet: Sheet) -> str | None:
    """The token of a form stashed for this sheet, taken from the cookie (used once)."""
    ticket = session.get("stash")
    if request.method != "GET" or not isinstance(ticket, dict) \
            or ticket.get("sheet") != sheet.id:
        return None  # kept for the sheet it belongs to
    session.pop("stash")
    return str(ticket.get("token"))


# -- viewing ---------------------------------------------------------------------------------
@bp.route("/<int:sheet_id>")
@role_required("referent", "facilitator")
def show(sheet_id: int):
    sheet = _sheet_for_viewer(sheet_id)
    page = sheet_reading.consult(db(), vault(), sheet, current_user)
    db().commit()  # decryption audit rows before the page leaves
    # The facilitator's second pair of eyes on what the instance will read (issue #8).
    review = _review(page.values) if not page.is_referent else {}
    return render_template(
        "sheets/show.html", sheet=sheet, values=page.values, identity=page.identity,
        events=page.events, is_referent=page.is_referent, show_sensitive=page.show_sensitive,
        allowed=page.allowed, sections=SECTIONS, fields=FIELDS, labels=_labels(),
        identity_labels=IDENTITY_LABELS, reason_form=ReasonForm(),
        screening_form=ScreeningForm(), states=SHEET_STATES, intensities=INTENSITE,
        passages=page.passages, decisions=page.decisions, formal=FORMAL_DECISION,
        feedback=page.feedback, review=review, information=page.information,
        information_job=page.information_job)


@bp.route("/<int:sheet_id>/documents/<int:document_id>")
@role_required("referent")
def document_download(sheet_id: int, document_id: int):
    """The referent's fiche retour or information note: pseudonymous like every document; the
    identity is on the page beside the link, never in the file (the worker cannot read it)."""
    sheet = _sheet_for_referent(sheet_id)
    document = db().get(GeneratedDocument, document_id)
    if (document is None or document.kind not in ("feedback", "information")
            or document.sheet_id != sheet.id):
        abort(404)
    return send_document(document, request.args.get("format") == "pdf")


@bp.route("/<int:sheet_id>/note-information", methods=["POST"])
@role_required("referent")
def information_note(sheet_id: int):
    """Ask the worker for the person's information note (by reference, RGPD information)."""
    sheet = _sheet_for_referent(sheet_id)
    documents.ask_for_information_note(db(), vault(), sheet)
    db().commit()  # the outbox row exists before anything is sent to Redis
    send_pending()
    flash("Note d'information : préparation demandée.", "success")
    return redirect(url_for("sheets.show", sheet_id=sheet.id) + "#information")


@bp.route("/<int:sheet_id>/droit-d-acces", methods=["POST"])
@role_required("referent")
def access_export(sheet_id: int):
    """Right of access: everything the structure holds about the sheet's person, in a zip."""
    sheet = _sheet_for_referent(sheet_id)
    body = right_of_access.export(db(), vault(), sheet.beneficiary, sheet.structure_id,
                                IDENTITY_LABELS)
    db().commit()
    return send_file(io.BytesIO(body), mimetype="application/zip", as_attachment=True,
                     max_age=0, download_name=f"droit-d-acces-{sheet.reference}.zip")


@bp.route("/<int:sheet_id>/retirer", methods=["POST"])
@role_required("referent")
def withdraw(sheet_id: int):
    sheet = _sheet_for_referent(sheet_id)
    form = ReasonForm()
    return _transition(sheet, "withdraw", form.reason.data or "" if form.validate() else "",
                       "Fiche retirée.")


@bp.route("/<int:sheet_id>/examen", methods=["POST"])
@role_required("facilitator")
def screen(sheet_id: int):
    sheet = _sheet_for_facilitator(sheet_id)
    form = ScreeningForm()
    if not form.validate() or form.decision.data not in ("accept", "return", "reject"):
        flash(f"Le commentaire fait {workflow.REASON_LIMIT} caractères au plus."
              if form.reason.errors else "Décision invalide.", "error")
        return redirect(url_for("sheets.show", sheet_id=sheet.id))
    messages = {"accept": "Fiche déclarée recevable.",
                "return": "Fiche renvoyée au référent pour complément.",
                "reject": "Fiche déclarée non recevable."}
    return _transition(sheet, form.decision.data, form.reason.data or "",
                       messages[form.decision.data])


def _transition(sheet: Sheet, action: str, reason: str, success: str):
    try:
        workflow.transition(db(), vault(), sheet, action, actor_id=current_user.id,
                            reason=reason)
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
    else:
        db().commit()
        send_pending()  # the referent's e-mail, if the transition tells them
        flash(success, "success")
    return redirect(url_for("sheets.show", sheet_id=sheet.id))


@bp.route("/<int:sheet_id>/identite", methods=["POST"])
@role_required("facilitator")
def reveal_identity(sheet_id: int):
    """The facilitator's explicit, audited look at the identity, with a reason."""
    sheet = _sheet_for_facilitator(sheet_id)
    form = ReasonForm()
    reason = (form.reason.data or "") if form.validate() else ""
    try:
        identity = workflow.reveal_identity(db(), vault(), sheet, actor_id=current_user.id,
                                            reason=reason)
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(url_for("sheets.show", sheet_id=sheet.id))
    db().commit()
    return render_template("sheets/identity.html", sheet=sheet, identity=identity,
                           labels=IDENTITY_LABELS)
