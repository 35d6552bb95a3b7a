from wtforms import DateField, SelectField, StringField, SubmitField
from wtforms.validators import Length, Optional

from intake.forms import Form


class AuditFilterForm(Form):
    """Filters read from the query string (a GET form: nothing changes, no CSRF token)."""

    class Meta:
        csrf = False

    user_id = SelectField("Utilisateur", coerce=int, validators=[Optional()])
    reference = StringField("Référence de fiche (ICL-…)", validators=[Optional(), Length(max=32)])
    action = SelectField("Action", validate_choice=False)
    since = DateField("Du", validators=[Optional()])
    until = DateField("Au (inclus)", validators=[Optional()])
    submit = SubmitField("Filtrer")
