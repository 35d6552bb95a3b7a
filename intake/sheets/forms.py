"""Sheet forms, built from the field declaration (shared/sheet_schema.py).

Every input is a plain string field: types, ranges and choices are checked by the domain
(French messages, never quoting the value), so a draft with a half-typed date is still saved
as typed and reported, never lost.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from wtforms import (
    Field,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length
from wtforms.widgets import CheckboxInput, ListWidget

from intake.choices import choices
from intake.forms import Form
from shared.domain.beneficiaries import Identity
from shared.domain.sheet_workflow import REASON_LIMIT
from shared.sheet_schema import ACTION_KEYS, ACTION_ROWS, FIELDS, INTENSITE, SheetField
from shared.text import canonical, iso_date_or_typed

IDENTITY_LABELS = {
    "nom": "Nom d'usage",
    "prenom": "Prénom(s)",
    "nom_naissance": "Nom de naissance",
    "date_naissance": "Date de naissance",
    "numero_caf": "N° allocataire CAF",
    "identifiant_france_travail": "Identifiant France Travail",
    "adresse": "Adresse",
    "code_postal": "Code postal",
    "commune": "Commune",
    "telephone": "Téléphone",
    "email": "Adresse e-mail",
}
ACTION_LABELS = {"action": "Action", "structure": "Structure", "debut": "Début", "fin": "Fin",
                 "resultat": "Résultat"}
_WIDE = 5000  # transport limit; the domain applies each field's own limit


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _input(label: str, kind: str = "text") -> StringField:
    render_kw = {"type": "date"} if kind == "date" else (
        {"inputmode": "numeric"} if kind == "int" else {})
    return StringField(label, validators=[Length(max=_WIDE)], render_kw=render_kw)


def _field(spec: SheetField, labels: dict[str, dict[str, str]]) -> Field:
    options = spec.choices if spec.choices is not None else labels.get(spec.ref or "", {})
    if spec.kind in ("choice", "yesno"):
        return SelectField(spec.label, choices=choices([("", "—"), *options.items()]),
                           validate_choice=False)
    if spec.kind == "multichoice":
        return CheckboxList(spec.label, choices=choices(options.items()), validate_choice=False)
    if spec.kind == "textarea":
        return TextAreaField(spec.label, validators=[Length(max=_WIDE)],
                             render_kw={"maxlength": spec.max_length, "rows": 6})
    return _input(spec.label, spec.kind)


def identity_form_class() -> type[Form]:
    attrs = {name: _input(label, "date" if name == "date_naissance" else "text")
             for name, label in IDENTITY_LABELS.items()}
    return type("IdentityForm", (Form,), attrs)


def sheet_form_class(labels: dict[str, dict[str, str]]) -> type[Form]:
    """Identity fields, then every declared field; freins and actions as input grids."""
    return _sheet_form_class(tuple((kind, tuple(entries.items()))
                                   for kind, entries in labels.items()))


@lru_cache(maxsize=64)
def _sheet_form_class(labels: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
                      ) -> type[Form]:
    # Built once per set of offered entries (each request of the edit page asks for one:
    # ~100 fields, a millisecond or two); a retired entry a sheet still uses makes its own.
    offered = {kind: dict(entries) for kind, entries in labels}
    attrs: dict[str, Any] = {name: _input(label, "date" if name == "date_naissance" else "text")
                             for name, label in IDENTITY_LABELS.items()}
    for spec in FIELDS:
        if spec.kind == "freins":
            for code, label in offered.get("frein", {}).items():
                attrs[f"frein__{code}"] = SelectField(
                    label, choices=choices([("", "—"), *INTENSITE.items()]),
                    validate_choice=False)
        elif spec.kind == "actions":
            for row in range(ACTION_ROWS):
                for key in ACTION_KEYS:
                    attrs[f"action_{row}_{key}"] = _input(
                        f"{ACTION_LABELS[key]} (ligne {row + 1})",
                        "date" if key in ("debut", "fin") else "text")
        else:
            attrs[spec.name] = _field(spec, offered)
    return type("SheetForm", (Form,), attrs)


class ReasonForm(Form):
    reason = TextAreaField("Motif", validators=[Length(max=REASON_LIMIT)])


class ScreeningForm(Form):
    decision = SelectField("Décision", choices=choices([
        ("accept", "Recevable"), ("return", "À compléter (renvoyer au référent)"),
        ("reject", "Non recevable")]))
    reason = TextAreaField("Commentaire ou motif (obligatoire sauf si recevable)",
                           validators=[Length(max=REASON_LIMIT)])


def values_from_form(form: Form) -> tuple[dict[str, Any], dict[str, str]]:
    """The typed values, and a French error for numbers that are not numbers."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    data = form.data
    for spec in FIELDS:
        if spec.kind == "freins":
            values["freins"] = {key.removeprefix("frein__"): level for key, level in data.items()
                                if key.startswith("frein__") and level}
        elif spec.kind == "actions":
            rows = []
            for row in range(ACTION_ROWS):
                entry = {key: canonical(data.get(f"action_{row}_{key}") or "").strip()
                         for key in ACTION_KEYS}
                if any(entry.values()):
                    rows.append(entry)
            values["actions"] = rows
        elif spec.kind == "int":
            raw = canonical(data.get(spec.name) or "").strip()
            whole = raw.isascii() and raw.isdigit()  # not "²", which isdigit() accepts
            if raw and not whole:
                errors[spec.name] = "Nombre entier attendu."
            values[spec.name] = int(raw) if whole else None
        elif spec.kind == "multichoice":
            values[spec.name] = list(data.get(spec.name) or [])
        else:
            text = canonical(data.get(spec.name) or "")
            if spec.kind == "date":
                text = iso_date_or_typed(text.strip())
            values[spec.name] = text if spec.kind == "textarea" else text.strip()
    return values, errors


def identity_from_form(form: Form) -> Identity:
    return Identity(**{name: canonical(form[name].data or "").strip()
                       for name in IDENTITY_LABELS})


def fill_form(form: Form, values: dict[str, Any], identity: dict[str, str]) -> None:
    """Put stored values (and the identity) back into a form for display."""
    for name, value in identity.items():
        form[name].data = value
    for spec in FIELDS:
        value = values.get(spec.name)
        if spec.kind == "freins":
            for code, level in (value or {}).items():
                if f"frein__{code}" in form:
                    form[f"frein__{code}"].data = level
        elif spec.kind == "actions":
            for row, entry in enumerate((value or [])[:ACTION_ROWS]):
                for key in ACTION_KEYS:
                    form[f"action_{row}_{key}"].data = entry.get(key, "")
        elif spec.kind == "int":
            form[spec.name].data = "" if value is None else str(value)
        else:
            form[spec.name].data = value
