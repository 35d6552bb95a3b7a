"""Facilitator forms. Per-member tables (answers, attendance) are read from the request by
name (``answer_<id>``), their values checked by the domain."""

from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from intake.choices import choices
from intake.forms import Form
from intake.sheets.forms import CheckboxList
from shared.models.icag import EXIT_REASONS
from shared.models.meeting import FORMAL_DECISION, FORMAL_OUTCOMES, ICAG_KINDS, MEMBER_KINDS

WEEKDAYS = ["Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi"]
WEEKS = [(1, "1re semaine"), (2, "2e semaine"), (3, "3e semaine"), (4, "4e semaine"),
         (-1, "Dernière semaine")]


class MeetingForm(Form):
    circonscription_id = SelectField("Circonscription", coerce=int)
    day = StringField("Date", validators=[DataRequired("La date est obligatoire.")],
                      render_kw={"type": "date"})
    at = StringField("Heure", validators=[DataRequired("L'heure est obligatoire.")],
                     render_kw={"type": "time"})
    place = StringField("Lieu", validators=[Length(max=200)])
    video_link = StringField("Lien de visioconférence (https://…)", validators=[Length(max=300)])


class ScheduleForm(Form):
    weekday = SelectField("Jour", coerce=int, choices=choices(enumerate(WEEKDAYS)))
    week_of_month = SelectField("Semaine du mois", coerce=int, choices=choices(WEEKS))
    at = StringField("Heure", validators=[DataRequired("L'heure est obligatoire.")],
                     render_kw={"type": "time"})
    place = StringField("Lieu", validators=[Length(max=200)])
    video_link = StringField("Lien de visioconférence (https://…)", validators=[Length(max=300)])
    cutoff_days = IntegerField("Date limite des fiches (jours avant : J-x)", default=10,
                               validators=[NumberRange(1, 60, "Entre 1 et 60 jours.")])
    dossier_days = IntegerField("Envoi du dossier (jours avant : J-y)", default=5,
                                validators=[NumberRange(1, 60, "Entre 1 et 60 jours.")])


class MemberForm(Form):
    name = StringField("Nom et prénom", validators=[DataRequired("Le nom est obligatoire."),
                                                    Length(max=160)])
    function = StringField("Fonction", validators=[Length(max=160)])
    email = StringField("Adresse e-mail professionnelle (convocations)",
                        validators=[Length(max=254)], render_kw={"type": "email"})
    structure_id = SelectField("Structure", coerce=int)
    kind = SelectField("Statut", choices=choices(MEMBER_KINDS.items()))
    acco_glo = SelectField("Conseiller·ère ACCO GLO (invité·e pour les points ICAG)",
                           choices=choices([("non", "Non"), ("oui", "Oui")]))


class ReasonForm(Form):
    reason = TextAreaField("Motif", validators=[Length(max=500)])


class PostponeForm(Form):
    day = StringField("Nouvelle date", render_kw={"type": "date"})
    at = StringField("Heure", render_kw={"type": "time"})
    reason = TextAreaField("Motif du report", validators=[Length(max=500)])


class ItemForm(Form):
    title = StringField("Intitulé (sans nom de personne accompagnée)",
                        validators=[Length(max=200)])
    presenter_structure = StringField("Structure qui présente", validators=[Length(max=160)])
    presenter_role = StringField("Fonction de la personne qui présente (pas son nom)",
                                 validators=[Length(max=160)])
    # Not "time_slot": the inscription form on the same page has that field (ids are unique).
    slot = StringField("Créneau du point (facultatif)", render_kw={"type": "time"})
    duration = IntegerField("Durée (minutes)", default=20, validators=[Optional()])


class InscribeForm(Form):
    sheet_id = SelectField("Fiche recevable", coerce=int)
    time_slot = StringField("Créneau", render_kw={"type": "time"})
    part = SelectField("Partie", choices=choices([("situation", "Étude de situation"),
                                                  ("icag", "ICAG")]))
    icag_kind = SelectField("Type ICAG", choices=choices([("", "—"), *ICAG_KINDS.items()]))
    same_person_confirmed = BooleanField(
        "Inscrire quand même si une autre fiche de la même personne est déjà à l'ordre du jour")


class AdjournForm(Form):
    reason = TextAreaField("Motif de l'ajournement", validators=[Length(max=500)])
    target_id = SelectField("Inscrire directement à la séance", coerce=int)


class AvisForm(Form):
    avis = SelectField("Avis / préconisation")
    motivation = TextAreaField("Motivation", validators=[Length(max=2000)],
                               render_kw={"rows": 5})
    come_back_on = StringField("Date de retour en instance (facultatif)",
                               render_kw={"type": "date"})
    formal_decision_by = SelectField("Décision formelle encore nécessaire",
                                     choices=choices(FORMAL_DECISION.items()))


class CorrectionForm(AvisForm):
    reason = TextAreaField("Motif de la correction (obligatoire, sans nom de personne)",
                           validators=[Length(max=500)], render_kw={"rows": 2})


class FormalDecisionForm(Form):
    outcome = SelectField("Décision prise",
                          choices=choices([("", "—"), *FORMAL_OUTCOMES.items()]))
    decided_on = StringField("Date de la décision", render_kw={"type": "date"})
    author = StringField("Décision prise par (fonction, délégation)",
                         validators=[Length(max=160)])
    detail = TextAreaField("Précisions (facultatif ; obligatoire si la décision diffère de "
                           "l'avis)", validators=[Length(max=1000)], render_kw={"rows": 3})


ACTION_ROWS = 3


class PartnershipOutcomeForm(Form):
    summary = TextAreaField("Synthèse", validators=[Length(max=2000)], render_kw={"rows": 5})
    next_step = TextAreaField("Décision ou suite à donner", validators=[Length(max=1000)],
                              render_kw={"rows": 3})
    follow_up_on = StringField("Date de suivi (facultatif)", render_kw={"type": "date"})


class IcagEntryForm(Form):
    started_on = StringField("Début de l'accompagnement global", render_kw={"type": "date"})
    diagnostic_on = StringField("Date du diagnostic partagé", render_kw={"type": "date"})
    diagnostic_structure_id = SelectField("Structure qui a mené le diagnostic partagé",
                                          coerce=int)
    categories = CheckboxList("Freins identifiés par le diagnostic (catégories)")


class IcagExitForm(Form):
    ended_on = StringField("Fin de l'accompagnement global", render_kw={"type": "date"})
    reason = SelectField("Motif de sortie", choices=choices([("", "—"), *EXIT_REASONS.items()]))
