"""The baseline of bench/intake.py: a bare Flask + Flask-WTF app validating a form like the
situation sheet's (the same field names, the same lengths), with CSRF, and nothing else: no
database, no encryption, no audit, no language model.

    gunicorn --pythonpath bench bare_form:app

The fields come from ``BARE_FORM_FIELDS`` (JSON: name -> maximum length), which the bench
sets to the fields it posts to the real sheet form.
"""

from __future__ import annotations

import json
import os
import secrets

from flask import Flask, redirect, render_template_string
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, Optional

FIELDS: dict[str, int] = json.loads(os.environ.get("BARE_FORM_FIELDS", "{}")) or {
    "nom": 100, "parcours": 5000}

PAGE = """<!doctype html><html lang="fr"><head><title>Fiche</title></head><body>
<form method="post">{{ form.csrf_token }}
{% for field in form if field.name != "csrf_token" %}
<p>{{ field.label }} {{ field() }}
{% if field.errors %}<span>Texte trop long.</span>{% endif %}</p>
{% endfor %}<button name="action" value="save">Enregistrer</button></form></body></html>"""


def _form_class() -> type[FlaskForm]:
    attributes = {
        name: (TextAreaField if size > 200 else StringField)(
            name, validators=[Optional(), Length(max=size)])
        for name, size in FIELDS.items()}
    return type("SheetForm", (FlaskForm,), attributes)


SheetForm = _form_class()
app = Flask(__name__)
app.config.update(SECRET_KEY=os.environ.get("BARE_FORM_SECRET") or secrets.token_hex(32),
                  WTF_CSRF_TIME_LIMIT=None)
CSRFProtect(app)


@app.route("/fiche", methods=["GET", "POST"])
def sheet():
    form = SheetForm()
    if form.validate_on_submit():
        return redirect("/fiche")
    return render_template_string(PAGE, form=form)
