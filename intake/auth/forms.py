from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

from intake.forms import Form


class LoginForm(Form):
    email = EmailField("Adresse e-mail professionnelle",
                       validators=[DataRequired("Indiquez votre adresse e-mail."), Length(max=254)])
    password = PasswordField("Mot de passe",
                             validators=[DataRequired("Indiquez votre mot de passe."),
                                         Length(max=256)])
    submit = SubmitField("Se connecter")


class ChangePasswordForm(Form):
    current = PasswordField("Mot de passe actuel",
                            validators=[DataRequired("Indiquez votre mot de passe actuel.")])
    new = PasswordField("Nouveau mot de passe (12 caractères au moins)",
                        validators=[DataRequired("Choisissez un nouveau mot de passe."),
                                    Length(max=256)])
    confirm = PasswordField("Confirmez le nouveau mot de passe",
                            validators=[EqualTo("new", "Les deux mots de passe diffèrent.")])
    submit = SubmitField("Changer le mot de passe")


class SecondFactorForm(Form):
    code = StringField("Code à 6 chiffres de votre application, ou un code de secours",
                       validators=[DataRequired("Saisissez le code affiché par votre "
                                                "application."), Length(max=32)])
    submit = SubmitField("Valider")


class EnrolmentForm(Form):
    code = StringField("Code à 6 chiffres affiché par l'application",
                       validators=[DataRequired("Saisissez le code affiché par votre "
                                                "application."), Length(max=32)])
    submit = SubmitField("Activer le second facteur")
