from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    FileField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp

from intake.choices import choices
from intake.forms import Form
from shared.models.document import INSTITUTIONS
from shared.models.reference import STRUCTURE_TYPES
from shared.models.user import ROLES


class AccountScopeForm(Form):
    """What an administrator sets on an account, at creation and when editing it."""

    full_name = StringField("Nom et prénom",
                            validators=[DataRequired("Le nom est obligatoire."), Length(max=160)])
    role = SelectField("Rôle", choices=choices(ROLES.items()))
    structure_id = SelectField("Structure (référent·e)", coerce=int, validators=[Optional()])
    manager = BooleanField("Responsable de la structure (voit toutes ses fiches)")
    institution = SelectField("Institution (direction signataire)",
                              choices=choices([("", "—"), *INSTITUTIONS.items()]),
                              validate_choice=False)
    circonscription_ids = SelectMultipleField("Circonscriptions (animation)", coerce=int,
                                              validators=[Optional()])
    habilitation_starts_on = DateField("Habilité·e à partir du (facultatif)",
                                       validators=[Optional()])
    habilitation_ends_on = DateField("Habilité·e jusqu'au, inclus (facultatif)",
                                     validators=[Optional()])


class UserForm(AccountScopeForm):
    email = EmailField("Adresse e-mail professionnelle",
                       validators=[DataRequired("L'adresse e-mail est obligatoire."),
                                   Length(max=254)])
    submit = SubmitField("Créer le compte")


class AccountEditForm(AccountScopeForm):
    submit = SubmitField("Enregistrer")


class ReassignForm(Form):
    colleague_id = SelectField("Confier ses fiches en cours à", coerce=int)
    submit = SubmitField("Confier les fiches")


class ImportForm(Form):
    kind = SelectField("Contenu du fichier")
    file = FileField("Fichier CSV (UTF-8, séparateur « ; » ou « , »)")
    dry_run = SubmitField("Vérifier (rien n'est enregistré)")
    apply = SubmitField("Importer")


class ApiClientForm(Form):
    name = StringField("Nom du système appelant",
                       validators=[DataRequired("Le nom est obligatoire."), Length(max=120)])
    scopes = SelectMultipleField("Droits", validators=[DataRequired("Choisissez un droit.")])
    expires_on = DateField("Valable jusqu'au (inclus)",
                           validators=[DataRequired("La date d'expiration est obligatoire.")])
    submit = SubmitField("Créer le jeton")


class CirconscriptionForm(Form):
    code = StringField("Code (ex. C07)",
                       validators=[DataRequired("Le code est obligatoire."),
                                   Regexp(r"^[A-Z0-9]{2,8}$",
                                          message="2 à 8 lettres majuscules ou chiffres.")])
    name = StringField("Nom", validators=[DataRequired("Le nom est obligatoire."),
                                          Length(max=120)])
    active = BooleanField("Active", default=True)
    submit = SubmitField("Enregistrer")


class StructureForm(Form):
    name = StringField("Nom", validators=[DataRequired("Le nom est obligatoire."),
                                          Length(max=160)])
    type = SelectField("Type", choices=choices(STRUCTURE_TYPES.items()))
    circonscription_id = SelectField("Circonscription", coerce=int)
    active = BooleanField("Active", default=True)
    submit = SubmitField("Enregistrer")


class ReferenceItemForm(Form):
    code = StringField("Code (stable, lettres minuscules, chiffres, « _ »)",
                       validators=[Length(max=40)])
    label = StringField("Libellé", validators=[DataRequired("Le libellé est obligatoire."),
                                               Length(max=200)])
    active = BooleanField("Proposé dans les formulaires", default=True)
    submit = SubmitField("Enregistrer")
