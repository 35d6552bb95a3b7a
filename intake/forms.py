"""The base of every form: WTForms' own messages (a length, a choice, a date) in French.

WTForms ships French translations of them; Flask-WTF would otherwise look for them through
Flask-Babel, which this app does not use (``WTF_I18N_ENABLED`` is off in the factory).
"""

from __future__ import annotations

from flask_wtf import FlaskForm


class Form(FlaskForm):
    class Meta:
        locales = ("fr_FR", "fr")
