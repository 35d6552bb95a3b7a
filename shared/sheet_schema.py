"""The situation sheet (fiche de saisine), declared once: every field with its section, label,
type, limits and data class (docs/security.md, rule 1). The form, validation, storage, the free-text
guard and the document builders all read this declaration.

Storage: the beneficiary's identity lives in ``beneficiaries`` (identity chain). The sheet's
own fields are grouped per data class into one encrypted JSON column each (see
``COLUMN_OF_CLASS``): adding a field needs no migration, and each class keeps its chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.protected import IDENTIFYING, SENSITIVE, SITUATIONAL

# Plain metadata: stored in the sheet's own column of the same name, needed for statistics
# and lists; a code of reference data identifies nobody.
METADATA = "metadata"

COLUMN_OF_CLASS = {
    SITUATIONAL: "situation_data",
    SENSITIVE: "sensitive_data",
    IDENTIFYING: "referent_data",  # the referent's professional contact: not in the dossier
}

SECTIONS = {
    "administratif": "Informations administratives",
    "situation": "Situation de la personne",
    "freins": "Freins",
    "actions": "Actions engagées",
    "saisine": "Motif et question posée à l'instance",
    "proposition": "Proposition du référent",
    "information": "Information et position de la personne",
}

# Fixed enumerations (code -> French label). The vocabularies that move (motifs, freins,
# avis, contrats, orientations) are reference data that administrators edit instead.
SEXE = {"femme": "Femme", "homme": "Homme", "autre": "Autre / non précisé"}
SITUATION_FAMILIALE = {"isole": "Personne isolée", "couple": "En couple"}
AGE_PLUS_JEUNE = {"moins_3": "Moins de 3 ans", "3_5": "3 à 5 ans", "6_11": "6 à 11 ans",
                  "12_17": "12 à 17 ans", "18_plus": "18 ans et plus"}
ANCIENNETE_RSA = {"moins_1": "Moins d'un an", "1_2": "1 à 2 ans", "2_5": "2 à 5 ans",
                  "plus_5": "Plus de 5 ans"}
INSCRIPTION_FT = {"inscrit": "Inscrit·e", "non_inscrit": "Non inscrit·e", "radie": "Radié·e"}
DUREE_ACTIVITE = {"15h": "15 h par semaine", "reduite": "Durée réduite",
                  "aucune": "Dispense (aucune durée)"}
MOTIF_DUREE = {"sante": "Santé", "handicap": "Handicap / invalidité",
               "parent_isole": "Parent isolé sans solution de garde (enfant de moins de 12 ans)"}
FORMATION = {"1_2": "Niveau I ou II (bac + 3 et plus)", "3": "Niveau III (bac + 2)",
             "4": "Niveau IV (bac)", "5": "Niveau V (CAP, BEP)",
             "5bis": "Niveau V bis (sortie en cours de CAP/BEP)", "6": "Niveau VI (collège)",
             "7": "Niveau VII (jamais scolarisé·e)"}
EXPERIENCE = {"toujours": "A toujours travaillé", "intermittence": "Par intermittence",
              "deja": "A déjà exercé", "jamais": "N'a jamais travaillé"}
LOGEMENT = {"autonome": "Logement autonome",
            "urgence": "Hébergement d'urgence (foyer, CHRS, hôtel)",
            "temporaire": "Temporaire (appartement relais, bail glissant, chez un tiers)",
            "precaire": "Précaire (résidence sociale, caravane, sans hébergement)"}
SITUATION_ADMINISTRATIVE = {"a_jour": "À jour", "en_cours": "Démarche en cours",
                            "bloquant": "Bloquante"}
INTENSITE = {"leger": "Léger", "important": "Important", "bloquant": "Bloquant"}
INFORMEE = {"oui": "Oui", "non": "Non"}
POSITION = {"accord": "D'accord", "desaccord": "En désaccord",
            "non_exprime": "Ne s'est pas exprimée",
            # Informed by the note sent to her, without an answer (issue #7).
            "injoignable": "N'a pas pu être jointe (note d'information envoyée)"}
OUI_NON = {"oui": "Oui", "non": "Non"}

# Reference-data kinds that administrators edit (docs/domain.md).
EDITABLE_KINDS = {
    "motif": "Motifs de saisine",
    "frein": "Freins",
    "avis": "Avis et préconisations",
    "contrat": "Types de contrat",
    "orientation": "Orientations / parcours",
}


@dataclass(frozen=True)
class SheetField:
    name: str
    label: str
    section: str
    kind: str  # text | textarea | choice | multichoice | date | int | yesno | freins | actions
    data_class: str = SITUATIONAL
    choices: dict[str, str] | None = None  # fixed enumeration
    ref: str | None = None  # reference-data kind (admin-editable enumeration)
    max_length: int = 0
    minimum: int | None = None
    maximum: int | None = None
    required: bool = False  # at submission only; drafts may be incomplete
    help: str = ""

    @property
    def column(self) -> str:
        return self.name if self.data_class == METADATA else COLUMN_OF_CLASS[self.data_class]

    @property
    def free_text(self) -> bool:
        """Checked against the person's identity before submission (the free-text guard)."""
        return self.kind in ("text", "textarea", "actions")


_FREE_TEXT_HELP = ("Ce texte sera lu par les membres de l'instance sous pseudonyme : n'écrivez "
                   "ni nom, ni adresse, ni numéro, ni nom d'employeur ou d'établissement.")

FIELDS: tuple[SheetField, ...] = (
    # A. Administrative
    SheetField("referent_fonction", "Fonction du ou de la référent·e", "administratif", "text",
               IDENTIFYING, max_length=120, required=True),
    SheetField("referent_telephone", "Téléphone professionnel du ou de la référent·e",
               "administratif", "text", IDENTIFYING, max_length=20),
    SheetField("urgent", "Situation urgente", "administratif", "yesno", METADATA,
               choices=OUI_NON),
    SheetField("seance_souhaitee", "Séance souhaitée", "administratif", "date",
               help="Laissez vide pour la prochaine séance disponible."),
    # C. Situation (pseudonymised)
    SheetField("sexe", "Sexe", "situation", "choice", choices=SEXE),
    SheetField("situation_familiale", "Situation familiale", "situation", "choice",
               choices=SITUATION_FAMILIALE, required=True),
    SheetField("enfants_a_charge", "Nombre d'enfants à charge", "situation", "int",
               minimum=0, maximum=15),
    SheetField("age_plus_jeune", "Âge du plus jeune enfant", "situation", "choice",
               choices=AGE_PLUS_JEUNE),
    SheetField("anciennete_rsa", "Ancienneté au RSA", "situation", "choice",
               choices=ANCIENNETE_RSA, required=True),
    SheetField("orientation", "Orientation / parcours actuel", "situation", "choice",
               ref="orientation", required=True),
    SheetField("debut_accompagnement", "Début de l'accompagnement actuel", "situation", "date"),
    SheetField("nombre_referents", "Nombre de référents successifs", "situation", "int",
               minimum=0, maximum=30),
    SheetField("contrat", "Contrat", "situation", "choice", ref="contrat"),
    SheetField("contrat_signe", "Contrat signé", "situation", "yesno", choices=OUI_NON),
    SheetField("contrat_debut", "Date de signature du contrat", "situation", "date"),
    SheetField("contrat_fin", "Date de fin du contrat", "situation", "date"),
    SheetField("duree_activite", "Durée hebdomadaire d'activité prévue", "situation", "choice",
               choices=DUREE_ACTIVITE),
    SheetField("motif_duree", "Raison d'une durée réduite ou d'une dispense", "situation",
               "choice", SENSITIVE, choices=MOTIF_DUREE),
    SheetField("inscription_ft", "Inscription à France Travail", "situation", "choice",
               choices=INSCRIPTION_FT),
    SheetField("radiation_date", "Date de radiation", "situation", "date"),
    SheetField("formation", "Niveau de formation", "situation", "choice", choices=FORMATION),
    SheetField("experience", "Expérience professionnelle", "situation", "choice",
               choices=EXPERIENCE),
    SheetField("logement", "Logement", "situation", "choice", choices=LOGEMENT),
    SheetField("parcours", "Parcours et situation (résumé)", "situation", "textarea",
               max_length=4000, required=True, help=_FREE_TEXT_HELP),
    # Freins: categories with an intensity; sensitive details minimised (docs/domain.md)
    SheetField("freins", "Freins identifiés", "freins", "freins", SENSITIVE, ref="frein",
               required=True),
    SheetField("sante_detail", "Santé / handicap : précisions utiles au parcours", "freins",
               "textarea", SENSITIVE, max_length=500,
               help="Pas de diagnostic ni de traitement : « problématique de santé impactant le "
                    "parcours, suivi en cours » suffit."),
    SheetField("situation_administrative", "Situation administrative (séjour)", "freins",
               "choice", SENSITIVE, choices=SITUATION_ADMINISTRATIVE),
    SheetField("justice_detail", "Justice / violences / mesure de protection", "freins",
               "textarea", SENSITIVE, max_length=500,
               help="Seulement si c'est ce qui bloque le parcours."),
    SheetField("surendettement", "Dossier de surendettement", "freins", "yesno", SENSITIVE,
               choices=OUI_NON),
    SheetField("partager_sensible", "Partager ces précisions sensibles avec l'instance",
               "freins", "yesno", choices=OUI_NON,
               help="Sinon, seules les catégories de freins figurent au dossier de séance."),
    # Actions engagées
    SheetField("actions", "Actions engagées", "actions", "actions", max_length=300),
    # Motif and question
    SheetField("motif", "Motif principal de la saisine", "saisine", "choice", METADATA,
               ref="motif", required=True),
    SheetField("motifs_secondaires", "Motifs secondaires", "saisine", "multichoice",
               ref="motif"),
    SheetField("question", "Question posée à l'instance", "saisine", "textarea",
               max_length=1000, required=True, help=_FREE_TEXT_HELP),
    SheetField("proposition", "Proposition du ou de la référent·e", "proposition", "textarea",
               max_length=1000, help=_FREE_TEXT_HELP),
    # Information and position of the person
    SheetField("personne_informee", "La personne a été informée de la saisine", "information",
               "yesno", choices=INFORMEE, required=True),
    SheetField("date_information", "Date de l'information", "information", "date"),
    SheetField("position_personne", "Position de la personne", "information", "choice",
               choices=POSITION, required=True),
    SheetField("commentaire_personne", "Observations de la personne", "information",
               "textarea", max_length=1000, help=_FREE_TEXT_HELP),
)

FIELDS_BY_NAME = {f.name: f for f in FIELDS}
ACTION_ROWS = 4  # rows of "actions engagées" offered by the form
ACTION_KEYS = ("action", "structure", "debut", "fin", "resultat")
