"""De-identification assistant for the sheets' free texts (issue #8).

The free texts go to a multi-agency table under a pseudonym; the identity guard
(``shared.domain.sheets.identity_hits``) knows the person's own identity only. This module
finds third parties and identifiers: people (children, doctors, partners, landlords…),
establishments and employers, phone numbers, e-mails, NIR, CAF and France Travail numbers,
postal addresses and postcodes, birth dates, IBANs.

Detection: Presidio's analyzer with spaCy's French pipeline (installed from PyPI with its
weights: nothing is downloaded at run time) for names, plus pattern recognisers for the French
formats, the NIR and IBAN keys checked by python-stdnum. It runs in the intake process only:
Presidio and spaCy are imported when the first text is analysed, so importing this module
costs nothing (the worker never analyses). Text never leaves the process; findings carry the
text only for the page that shows them (``repr`` hides it) and are never logged.

Design (issue 23):

- The product's own placeholders (``[n° CAF]``, ``[enfant]``…) are masked before analysis:
  never findings, never a cue or a neighbour for another span, so replacing one finding does
  not create new ones.
- Case: a name typed in lower case ("son fils moussa", "le dr lambert") is looked for in a
  re-cased view of the text, where the words that may be names (after a title or a family
  word, or unknown to the French lexicon of the spaCy pipeline) get a capital; the model's
  person spans are kept whatever their case after such a cue. Particles (de, d', van, ben,
  el…) stay inside a name.
- Letters are Unicode classes (``\\p{Lu}``, ``[^\\W\\d_]``, ``str.isupper``), not lists.
- A vocabulary of the field identifies nobody: the product's reference lists (motifs, freins,
  avis, contrats, orientations, structure types), the common acronyms of social and
  employment policy, functions ("le Maire"), the communes of the département. A span made of
  those words, titles and particles only is no finding; a single capitalised common word
  opening a sentence or a line, without a person cue, is no finding unless the tagger reads
  it as a proper noun, then a low-confidence person. Right after a person cue, a first name
  that is also an acronym or a common word of the field ("son fils Ali", "sa fille Mai") is
  a name: there those count only in capitals ("son fils CP"). A lone acronym is no
  establishment (the model tags "MASP", "SAAD" as organisations).
- Cues name the role: titles and family words before a person (also the items of a list
  under "Enfants :"), establishment nouns ("l'EHPAD", "l'organisme"), employer cues ("chez",
  "via", "pour" after a word of work) and landlord cues ("locataire de") before an
  organisation; the proposed replacement says the role ([enfant], [employeur]…).

Review: each finding is replaced (accepted), edited away, or dismissed as not identifying.
Dismissals and the number of accepted replacements per kind are kept in the sheet's encrypted
values under ``REVIEW_KEY`` (one entry per text unit, stored in that field's own class
column); statistics get counts per kind only.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from shared.memo import DigestMemo
from shared.models.reference import STRUCTURE_TYPES
from shared.protected import IDENTIFYING
from shared.reference_defaults import DEFAULT_ITEMS
from shared.sheet_schema import FIELDS, FIELDS_BY_NAME

T = TypeVar("T")
SPACY_MODEL = "fr_core_news_md"
REVIEW_KEY = "deidentification"
HIGH_CONFIDENCE = 0.8
# Keys of an "actions engagées" row that hold free text (the others are dates).
ACTION_TEXT_KEYS = ("action", "structure", "resultat")

# kind -> French label (shown to the user, and the statistics' row names)
KINDS = {
    "person": "nom d'une personne",
    "organisation": "établissement ou employeur",
    "phone": "numéro de téléphone",
    "email": "adresse e-mail",
    "nir": "numéro de sécurité sociale (NIR)",
    "caf": "numéro allocataire CAF",
    "france_travail": "identifiant France Travail",
    "address": "adresse postale",
    "postcode": "code postal",
    "birth_date": "date de naissance",
    "iban": "IBAN",
}
REPLACEMENTS = {
    "person": "[personne]", "organisation": "[organisme]", "phone": "[téléphone]",
    "email": "[e-mail]", "nir": "[NIR]", "caf": "[n° CAF]",
    "france_travail": "[identifiant France Travail]", "address": "[adresse]",
    "postcode": "[code postal]", "birth_date": "[date de naissance]", "iban": "[IBAN]",
}
OUTCOMES = ("accepted", "dismissed")

_RELATIVES = (r"fils|filles?|enfants?|bébé|aînée?|cadette?|benjamine?|petite?-fils|"
              r"petite?-fille|neveu|nièce|compagnon|compagne|conjointe?|mari|époux|épouse|"
              r"sœur|soeur|frère|mère|père|cousine?|oncle|tante|voisine?|ex-mari|"
              r"ex-compagnon|ex-compagne|ex-conjointe?|familles?|ménage")
_BUSINESSES = (r"boulangerie|boucherie|pharmacie|garage|restaurant|supermarché|magasin|"
               r"société|entreprise|cabinet|hôtel|salon|épicerie|pressing|auto-école")
_LEGAL_FORMS = r"SARL|SAS|SASU|EURL|SA|SCI|SNC|Ets|Établissements|Etablissements"
# Establishments and employers named after a common noun ("l'EHPAD Les Tilleuls",
# "l'hôpital Avicenne", "le foyer Adoma"): the noun and the name are the finding.
_ESTABLISHMENTS = (r"ehpad|ehpa|hôpital|hopital|clinique|foyer|chrs|chu|chi|eps|esat|ime|"
                   r"mecs|cada|huda|centre\s+hospitalier|centre|maison\s+de\s+retraite|"
                   r"résidence|residence|association|entreprise|société|societe|agence|"
                   r"enseigne|groupe|ets|organisme(?:\s+de\s+formation)?")
# The role a name plays, from the words just before it: the proposed replacement says it.
_PERSON_ROLES = (
    ("[enfant]", r"fils|filles?|enfants?|bébé|aîné|aînée|cadet|cadette|benjamine?|neveu|"
                 r"nièce|petite?-(?:fils|fille)"),
    ("[médecin]", r"dr|docteure?|pr|professeure?|médecin|psychiatre|psychologue|pédiatre|"
                  r"généraliste|infirmière?|kinésithérapeute|kiné|sage-femme|orthophoniste"),
    ("[conjoint·e]", r"conjointe?|mari|époux|épouse|compagnon|compagne|concubine?|"
                     r"ex-(?:mari|compagnon|compagne|conjointe?|époux|épouse)"),
    ("[bailleur]", r"propriétaire|bailleur|bailleresse|logeur|logeuse"),
    ("[employeur]", r"employeur|employeuse|patron|patronne|gérante?|directeur|directrice"),
)
_ORGANISATION_ROLES = (
    ("[établissement scolaire]", r"école|ecole|collège|college|lycée|lycee|crèche|creche|"
                                 r"scolaire|maternelle|scolarisée?"),
    ("[employeur]", rf"chez|employeur|embauchée?|salariée?|recrutée?|travaill\w*|intérim|"
                    rf"cdd|cdi|contrat|pour|via|{_BUSINESSES}|{_LEGAL_FORMS}"),
    ("[bailleur]", r"bailleur|propriétaire|logement|hlm|loyer|locataire"),
    ("[structure de soins]", r"hôpital|hopital|clinique|soins|santé|cmp|médical|ehpad|eps|"
                             r"chu|centre hospitalier|hospitalisée?"),
)
_ROLE_WINDOW = 45  # characters looked at before a name


def _role_regex(roles: tuple[tuple[str, str], ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?P<r{n}>\\b(?:{words})\\b)"
                               for n, (_, words) in enumerate(roles)), re.IGNORECASE)


_PERSON_ROLE_RE = _role_regex(_PERSON_ROLES)
_ORGANISATION_ROLE_RE = _role_regex(_ORGANISATION_ROLES)

# Everything the product itself writes into a text: never a finding, never a cue.
PLACEHOLDERS = frozenset({*REPLACEMENTS.values(),
                          *(role for role, _ in (*_PERSON_ROLES, *_ORGANISATION_ROLES))})
_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in sorted(PLACEHOLDERS, key=len,
                                                                    reverse=True)),
                             re.IGNORECASE)

# Words of ordinary social-work French that the NER model mistakes for names: titles,
# institutions and schemes, places that identify nobody (the communes of the département).
_TITLES = {"madame", "monsieur", "mme", "mmes", "m", "mr", "mlle", "mademoiselle", "dr",
           "docteur", "docteure", "me", "maitre", "pr", "professeur", "professeure", "mm"}
# Particles inside a name ("M. de Villiers", "Mme Ben Salah", "Ahmed el Amrani") and the
# small words of a place or institution's name: alone they name nobody.
_PARTICLES = (r"de|du|des|d['’]|le|la|les|van|von|der|den|ter|ten|ben|bin|ibn|bent|el|al|"
              r"ould|ag|da|di|do|dos|das|del|della|mac|abou|abu")
_NEUTRAL_WORDS = {"de", "du", "des", "d", "l", "le", "la", "les", "et", "aux", "au", "sur",
                  "sous", "en", "a", "un", "une", "van", "von", "der", "den", "el", "al"}
# Functions, not names ("Monsieur le Maire", "la Juge").
_FUNCTIONS = {"maire", "adjoint", "adjointe", "prefet", "prefete", "juge", "procureur",
              "procureure", "president", "presidente", "directeur", "directrice", "depute",
              "deputee", "senateur", "senatrice", "ministre", "commissaire", "conseiller",
              "conseillere", "delegue", "deleguee", "chef", "cheffe", "responsable",
              "coordinateur", "coordinatrice", "educateur", "educatrice", "assistante",
              "assistant", "social", "sociale", "noel", "paques", "toussaint", "ramadan",
              "aid"}
# The common acronyms of social and employment policy (a vocabulary, not a list of names):
# institutions, schemes, contracts, benefits, diplomas; those the model mistook before
# (RSA, CAF, MDPH…) are in _COMMON_WORDS, which the field vocabulary takes too. "cd93"
# stays here: the vocabulary takes from _COMMON_WORDS single words of letters only.
_ACRONYMS = {
    "aci", "acre", "ai", "ale", "ana", "anah", "ape", "ars", "asf", "asl", "bafa", "bpjeps",
    "btp", "caarud", "cafa", "capeb", "cas", "cd93", "cddi", "ce1", "ce2", "cesf", "cfa", "ch",
    "chu", "cjc", "clic", "cm1", "cm2", "cp", "cpf", "crip", "csapa", "dae", "dasen", "ddets",
    "dealt", "dreets", "ea", "ei", "eja", "ep", "eps", "esms", "etti", "geiq", "huda", "ifsi",
    "ime", "insee", "ird", "itep", "maia", "mds", "mecs", "ml", "mla", "pch", "pjj", "pli",
    "pmsmp", "poec", "poei", "prf", "qpv", "rh", "sae", "saio", "samsah", "savs", "segpa",
    "sessad", "smic", "spe", "ssd", "ssiad", "ulis",
}
_COMMON_WORDS = {
    "rsa", "caf", "cpam", "cnaf", "msa", "france travail", "pole emploi", "ft", "pe", "ccas",
    "cias", "cmp", "cmpp", "pmi", "ali", "mdph", "ase", "aeeh", "aah", "ass", "are", "apl",
    "als", "prime d'activite", "cada", "chrs", "siao", "samu social", "fsl", "ccapex", "cer",
    "ppae", "ag", "acco glo", "icl", "icl-i", "icag", "dieess", "cd93", "departement",
    "conseil departemental", "seine-saint-denis", "mission locale", "plie", "siae", "iae",
    "epide", "afpa", "greta", "cidff", "secours populaire", "secours catholique",
    "restos du coeur", "restos du cœur", "emmaus", "croix-rouge", "urssaf", "dgfip",
    "prefecture", "tribunal", "jaf", "spip", "crous", "banque de france", "udaf", "rqth",
    "css", "ame", "cmu", "pass", "dalo", "daho", "sdf", "hlm", "oph", "ehpad", "esat",
    "cap", "bep", "bac", "caces", "permis", "vae", "dilf", "delf", "fle", "cv", "bts",
    "instance", "référent", "referent", "referente", "france", "paris", "ile-de-france",
    "aubervilliers", "aulnay-sous-bois", "bagnolet", "le blanc-mesnil", "blanc-mesnil",
    "bobigny", "bondy", "le bourget", "clichy-sous-bois", "coubron", "la courneuve",
    "drancy", "dugny", "epinay-sur-seine", "gagny", "gournay-sur-marne", "l'ile-saint-denis",
    "les lilas", "livry-gargan", "montfermeil", "montreuil", "neuilly-plaisance",
    "neuilly-sur-marne", "noisy-le-grand", "noisy-le-sec", "pantin",
    "les pavillons-sous-bois", "pierrefitte-sur-seine", "le pre-saint-gervais", "le raincy",
    "romainville", "rosny-sous-bois", "saint-denis", "saint-ouen", "saint-ouen-sur-seine",
    "sevran", "stains", "tremblay-en-france", "vaujours", "villemomble", "villepinte",
    "villetaneuse", "cdd", "cdi", "cui", "pec", "cnav", "carsat", "aspa", "ppre", "rased",
    "clas", "asv", "janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout",
    "septembre", "octobre", "novembre", "decembre", "lundi", "mardi", "mercredi", "jeudi",
    "vendredi", "samedi", "dimanche", "euros", "euro", "salle",
}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip(" .,;:'’")


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", text)


def _label_words() -> tuple[frozenset[str], frozenset[str]]:
    """The single words of the product's own labels (reference lists, structure types, kinds
    of finding): those written in small letters, with functions and titles, never someone's
    first name; and those written in capitals, acronyms ("ALI")."""
    labels = [label for items in DEFAULT_ITEMS.values() for _, label in items]
    labels += [*STRUCTURE_TYPES.values(), *KINDS.values(), *PLACEHOLDERS]
    words = [w for label in labels for w in _words(label) if len(w) > 2]
    return (frozenset({_fold(w) for w in words if not w.isupper()} | _FUNCTIONS | _TITLES),
            frozenset(_fold(w) for w in words if w.isupper()))


_LABEL_VOCABULARY, _LABEL_ACRONYMS = _label_words()
# The whole field vocabulary adds the acronyms and the common words (months, communes…),
# some of which are also first names ("Ali", "Mai"): see _common.
_VOCABULARY = _LABEL_VOCABULARY | _LABEL_ACRONYMS | _ACRONYMS | {
    w for w in map(_fold, _COMMON_WORDS) if re.fullmatch(r"[^\W\d_]+", w)}

# \p{Lu}/\p{Lt}: the Unicode capitals (Ș, Ł, Đ…), for the rules Presidio runs with `regex`.
_UPPER = r"\p{Lu}\p{Lt}"
_NAME_WORD = rf"[{_UPPER}][\w'’&-]*"
_NAME = rf"(?:(?:{_PARTICLES})\s?)?{_NAME_WORD}"  # a name word, after a particle or not
_LINK = r"(?:de la|de l['’]|de|du|des|d['’]|l['’]|la|le|les|et|aux|au|sur|sous|en)"
_TITLE_WORDS = r"Dr|Docteure?|Pr|Mme|Madame|M\.|Mr\.?|Monsieur|Mlle|Me|Maître"
_STREET_TYPES = (r"rue|avenue|av\.|boulevard|bd|allée|allee|impasse|place|chemin|route|quai|"
                 r"cours|square|villa|cité|cite|passage|sentier|sente|voie|rond-point|mail|"
                 r"résidence|residence|esplanade|parvis|promenade|ruelle")
_MONTHS = (r"janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|"
           r"octobre|novembre|décembre|decembre")
_SCHOOLS = (r"école|ecole|collège|college|lycée|lycee|crèche|creche|groupe scolaire|"
            r"halte-garderie|IME|ITEP|SEGPA|Ulis")
_ARTICLE = r"(?:l['’]|la\s+|le\s+|les\s+)"
_EMPLOYER_CUES = (r"\bchez|employeur|employée?\s+(?:par|chez|de)|embauchée?\s+(?:par|chez)|"
                  r"salariée?\s+(?:de|d['’]|chez)|recrutée?\s+par|"
                  r"travaill\w*\s+(?:pour|chez|à|au)|en\s+(?:CDD|CDI|intérim|mission)\s+"
                  r"(?:chez|à|au)|la\s+société|l['’]entreprise|l['’]enseigne|"
                  r"l['’]agence\s+d['’]intérim|le\s+magasin|le\s+restaurant|le\s+garage|"
                  # "via" names a platform or an agency; "pour" an employer after a word
                  # of work in the same clause ("livre pour", "des missions pour").
                  r"\bvia|\b(?:travaill|livr|mission|intérim|interim|contrat|poste|job|"
                  r"extra|stage|salari|employ|emploi)\w*\b[^.;:!?\n]{0,25}?\bpour|"
                  # A landlord or a manager: "locataire de Vilogia", "logée par Seine-Saint-
                  # Denis Habitat", "un studio géré par Plaine Commune Habitat".
                  r"locataire\s+(?:de|d['’]|chez)|(?:logé|géré)e?s?\s+par|"
                  r"bailleur\s+(?:social\s+)?")
_NOT_AN_EMPLOYER = r"(?!(?i:m\.|mme|madame|monsieur|mr|mlle|dr|docteur|lui|elle|eux)\b)"
# Its words have a capital, or are a number with capitals ("Immobilière 3F").
_ORGANISATION_NAME = (rf"{_NAME_WORD}(?:\s(?:&\s|(?i:de|du|des|et)\s)?"
                      rf"(?:{_NAME_WORD}|\d+[{_UPPER}]+(?![\w])))*")
# The cues before a birth date: the date may come a place later ("né à Pointe-à-Pitre le").
_BIRTH_CUE = (r"(?<=(?i:\bnée?s?\b|\bné\(e\)|naissance|\bDDN\b)"
              r"(?:(?![.!?;]\s)[^\n\d]){0,45})")
_NIR_CUE = (r"(?<=(?i:\bNIR\b|sécurité\s+sociale|securite\s+sociale|\bsécu\b|\bsecu\b|"
            r"\bINSEE\b|immatriculation|\bn°\s?SS\b)[^\d\n]{0,30})")
_NIR_13 = r"[12]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[ABab])\s?\d{3}\s?\d{3}(?![ .]?\d)(?![\w])"


@dataclass(frozen=True)
class _Rule:
    kind: str
    regex: str
    score: float
    check: str = ""  # name of the key check, if any


_RULES = (
    _Rule("person", rf"(?<=\b(?:{_TITLE_WORDS})\s)"
                    rf"{_NAME}(?:[ -]{_NAME}){{0,2}}", 0.85),
    # French numbers, any grouping of their ten digits ("06 123 456 78").
    _Rule("phone", r"(?<![\w+])(?<!\d[ .-])(?:(?:\+|00)\s?33\s?(?:\(0\)\s?)?[1-9]|0[1-9])"
                   r"(?:[ .-]?\d){8}(?![ .-]?\d)", 0.9),
    # Foreign numbers: a country code, then 7 to 13 digits in any grouping.
    _Rule("phone", r"(?<![\w+])(?:\+|00)\s?(?!33)[1-9](?:[ .-]?\d){7,13}(?![ .-]?\d)", 0.85),
    _Rule("email", r"(?<![\w.+'’-])[\w.+-](?:[\w.+'’-]*[\w.+-])?@[\w-]+(?:\.[\w-]+)*"
                   r"\.[A-Za-z]{2,}\b", 0.95),
    _Rule("nir", r"(?<![\w])[12]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[ABab])\s?\d{3}\s?\d{3}\s?\d{2}"
                 r"(?!\d)", 0.95, "nir"),
    # A NIR without its key: after a cue, or in its own layout (1 84 08 59 197 919).
    _Rule("nir", rf"{_NIR_CUE}{_NIR_13}", 0.9, "nir13"),
    _Rule("nir", r"(?<![\w])(?<!\d[ .])[12] \d{2} \d{2} (?:\d{2}|2[ABab]) \d{3} \d{3}"
                 r"(?![ .]?\d)(?![\w])", 0.85, "nir13"),
    _Rule("iban", r"(?<![A-Z0-9])FR\d{2}(?:\s?[A-Z0-9]{4}){5}\s?[A-Z0-9]{3}(?![A-Z0-9])",
          0.95, "iban"),
    _Rule("iban", r"(?<![A-Z0-9])(?!FR)[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}"
                  r"(?:\s?[A-Z0-9]{1,3})?(?![A-Z0-9])", 0.9, "iban"),
    # Seven digits after a CAF cue, grouped or not ("2 846 513").
    _Rule("caf", r"(?<=(?i:\bcaf\b|allocataire|matricule)[^\d\n]{0,25})"
                 r"\d(?:[ .]?\d){6}(?![\w])(?![ .]?\d)", 0.85),
    _Rule("france_travail", r"(?<![\w])\d{7}[A-Z](?![\w])", 0.85),
    _Rule("france_travail", r"(?<=(?i:france\s+travail|p[ôo]le\s+emploi|identifiant|\bFT\b)"
                            r"[^\d\n]{0,30})\d(?:\s?\d){6}(?:\s?[A-Z]|\s?\d)(?![\w])", 0.85),
    _Rule("address", rf"(?<![\w])\d{{1,4}}(?:\s?(?:bis|ter|[A-Da-d]))?,?\s(?i:{_STREET_TYPES})"
                     rf"\s(?:(?i:{_LINK})\s?)?(?:{_NAME_WORD}|\d{{1,4}}(?!\d))"
                     rf"(?:[ -](?:(?i:{_LINK})\s?)?(?:{_NAME_WORD}|\d{{1,4}}(?![\d/])))*", 0.9),
    _Rule("postcode", r"(?<![\w])93\d{3}(?!\d)", 0.7),
    _Rule("postcode", rf"(?<![\w])\d{{5}}(?=\s[{_UPPER}]\p{{Ll}})", 0.6),
    _Rule("birth_date", rf"{_BIRTH_CUE}(?:\d{{1,2}}[/.-]\d{{1,2}}[/.-](?:19|20)?\d{{2}}(?!\d)|"
                        rf"\d{{1,2}}(?:er)?\s(?i:{_MONTHS})\s(?:19|20)?\d{{2}}(?!\d))", 0.85),
    _Rule("organisation", rf"(?i:{_SCHOOLS})\s(?:(?i:maternelle|élémentaire|elementaire|"
                          rf"primaire|professionnel|polyvalent|privée?|publique?|municipale)"
                          rf"\s)?(?:(?i:{_LINK})\s?)?{_NAME_WORD}"
                          rf"(?:\s(?:(?i:{_LINK})\s?)?{_NAME_WORD})*", 0.85),
    _Rule("organisation", rf"(?<![\w])(?i:{_ESTABLISHMENTS})\s(?:(?i:{_LINK})\s?)?{_NAME_WORD}"
                          rf"(?:[\s-](?:(?i:{_LINK})\s?)?{_NAME_WORD})*", 0.86),
    _Rule("person", rf"(?<=\b(?i:{_RELATIVES})(?:\s(?i:de Madame|de Monsieur|de Mme|de M\.))?"
                    rf"\s?[,:]?\s(?:{_NAME_WORD}(?:\s\(\d+\s?ans\))?(?:,\s|\set\s))*)"
                    rf"{_NAME}(?:[ -]{_NAME}){{0,2}}", 0.85),
    # The items of a list under a heading that names relatives ("Famille :\n- Samira, 12
    # ans"): the first words of each item, of the first 16 items (a bound that keeps the
    # look-behind linear in the text's length).
    _Rule("person", rf"(?<=^[ \t]*(?i:{_RELATIVES})[ \t]*:[ \t]*\n(?:[ \t]*[-–•*].*\n){{0,15}}"
                    rf"[ \t]*[-–•*][ \t]*)"
                    rf"{_NAME}(?:[ -]{_NAME}){{0,2}}", 0.85),
    _Rule("organisation", rf"(?:\b(?i:{_BUSINESSES})\s|\b(?:{_LEGAL_FORMS})\s)"
                          rf"{_NAME_WORD}(?:\s(?:&\s)?{_NAME_WORD})*", 0.9),
    _Rule("organisation", rf"(?<=(?i:{_EMPLOYER_CUES})[,:]?\s+(?i:{_ARTICLE})?)"
                          rf"{_NOT_AN_EMPLOYER}{_ORGANISATION_NAME}", 0.86),
    # A weaker cue ("pour Adecco" without a word of work before it): below the model's
    # person score, so a name the model knows for a person stays one.
    _Rule("organisation", rf"(?<=\bpour\s+(?i:{_ARTICLE})?)"
                          rf"{_NOT_AN_EMPLOYER}{_ORGANISATION_NAME}", 0.84),
)
# NER labels of the French pipeline: persons are high confidence, organisations medium
# (most named organisations in a sheet are partner institutions); places are left to the
# address and postcode rules (a commune alone identifies nobody).
_NER_KINDS = {"PERSON": ("person", 0.85), "ORGANIZATION": ("organisation", 0.6)}
# Scores of a person span the model found in lower case: after a cue, or not.
_LOWER_CASE_SCORES = (0.85, 0.7)
_SENTENCE_START_SCORE = 0.5  # one common word opening a sentence, no cue: low confidence
# Between a cue and a name: a few spaces at most, so that a cue never reaches over a
# placeholder (masked as spaces: "le Pr [médecin], pneumologue").
_CUE_GAP = r"\s{0,3}[,:]?\s{0,3}"
# The words right before a person's name ("le dr", "son fils", "sa compagne,").
_TITLE_CUE = r"dr|docteure?|pr|professeure?|mme|mmes|madame|m|mr|monsieur|mlle|me|ma[iî]tre"
_KIN_CUE = "|".join(words for _, words in _PERSON_ROLES[:4]) + "|" + _RELATIVES
_PERSON_CUE_RE = re.compile(
    rf"(?:(?<![^\W\d_])(?:{_TITLE_CUE})\.?|\b(?:{_KIN_CUE})\b)"
    rf"(?:\s+(?:de|d['’])\s*(?:madame|monsieur|mme|m\.))?{_CUE_GAP}$", re.IGNORECASE)
# Lower-case words after these cues that the re-cased view tries as names.
_LOWER_CUE_RE = re.compile(
    rf"(?:(?<![^\W\d_])(?:dr|docteure?|pr|mme|m|mr|mlle)\.?|\b(?:{_KIN_CUE})\b)"
    rf"(?:\s+(?:de|d['’])\s*(?:madame|monsieur|mme|m\.))?\s{{0,3}}[,:]?\s{{1,3}}"
    rf"(?P<name>(?:(?:{_PARTICLES})\s?)?[^\W\d_][\w'’-]*(?:\s[^\W\d_][\w'’-]*)?)",
    re.IGNORECASE)
_NAME_LIST_RE = re.compile(r"(?:\s?\(\d+\s?ans\))?(?:\s{0,3},\s{0,3}|\s{1,3}et\s{1,3})"
                           r"(?P<name>[^\W\d_][\w'’-]*)")
# Parts of speech a lower-case word after a cue is not a name in.
_NOT_NAME_POS = {"VERB", "AUX", "ADP", "DET", "PRON", "CCONJ", "SCONJ", "ADV", "NUM", "PUNCT"}


@dataclass(frozen=True)
class Detection:
    """One span of a text that looks identifying. ``text`` is never logged or repr'd."""

    kind: str
    start: int
    end: int
    score: float
    replacement: str
    text: str = field(repr=False)

    @property
    def high_confidence(self) -> bool:
        return self.score >= HIGH_CONFIDENCE

    @property
    def label(self) -> str:
        return KINDS[self.kind]


@dataclass(frozen=True)
class Finding:
    """A detection in one text unit of a sheet, and whether the referent dismissed it."""

    unit: str  # field name, or ``action_<row>_<key>`` for a row of actions engagées
    detection: Detection
    dismissed: bool = False

    @property
    def key(self) -> str:
        """Names this finding in a form button; checked against a fresh analysis."""
        d = self.detection
        return f"{self.unit}:{d.start}:{d.end}:{d.kind}"


# -- the analyzer: one per process, loaded on first use ----------------------------------
class _Analysis(NamedTuple):
    results: list  # Presidio's RecognizerResult
    doc: Any  # spaCy's Doc of the same text (parts of speech, places)


class _Analyzer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine = None
        self._lexicon: tuple[Any, frozenset[str], frozenset[str]] | None = None

    def engine(self):
        with self._lock:
            if self._engine is None:
                self._engine = _build_engine()
                self._lexicon = _lexicon(self._engine)
            return self._engine

    def analyse(self, text: str) -> _Analysis:
        engine = self.engine()
        # One analysis at a time: spaCy pipelines are not documented as thread-safe, and
        # one field takes tens of milliseconds.
        with self._lock:
            artifacts = engine.nlp_engine.process_text(text, "fr")
            results = engine.analyze(text=text, language="fr", nlp_artifacts=artifacts,
                                     entities=[*_NER_KINDS, *(f"ICLI_{r.kind.upper()}"
                                                             for r in _RULES)])
            return _Analysis(results, artifacts.tokens)

    def people(self, text: str) -> list[tuple[int, int]]:
        """The person spans the model's entity recogniser alone finds in ``text``."""
        engine = self.engine()
        with self._lock:
            nlp = engine.nlp_engine.nlp["fr"]
            doc = nlp(text, disable=[n for n in nlp.pipe_names if n not in ("tok2vec", "ner")])
            return [(e.start_char, e.end_char) for e in doc.ents if e.label_ == "PER"]

    def known(self, word: str) -> bool:
        """Whether ``word`` is a word of French (the pipeline's lemmatiser tables and stop
        words): a lower-case word that is not may well be a name."""
        self.engine()
        assert self._lexicon is not None
        forms, lemmas, stop = self._lexicon
        lower = word.lower()
        return lower in stop or lower in lemmas or lower in forms


def _lexicon(engine) -> tuple[Any, frozenset[str], frozenset[str]]:
    nlp = engine.nlp_engine.nlp["fr"]
    tables = nlp.get_pipe("lemmatizer").lookups
    index = tables.get_table("lemma_index")
    lemmas = frozenset(word for words in index.values() for word in words)
    return tables.get_table("lemma_lookup"), lemmas, frozenset(nlp.Defaults.stop_words)


def _build_engine():
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    if importlib.util.find_spec(SPACY_MODEL) is None:
        # Presidio would download a missing model: refuse, it must come from the install.
        raise RuntimeError(f"spaCy model {SPACY_MODEL} is not installed (see pyproject.toml)")
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "fr", "model_name": SPACY_MODEL}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": {"PER": "PERSON", "ORG": "ORGANIZATION",
                                                 "LOC": "LOCATION"},
            "labels_to_ignore": ["MISC", "LOC", "LOCATION"],
        },
    })
    registry = RecognizerRegistry(supported_languages=["fr"])
    registry.add_recognizer(SpacyRecognizer(supported_language="fr",
                                            supported_entities=list(_NER_KINDS)))
    for recognizer in _pattern_recognizers():
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(nlp_engine=provider.create_engine(), registry=registry,
                          supported_languages=["fr"])


def _nir_without_key(digits: str) -> bool:
    """The 13 digits of a NIR without its key: sex, then a possible month."""
    month = int(digits[3:5])
    return len(digits) == 13 and digits[0] in "12" and (1 <= month <= 12 or month >= 20)


def _pattern_recognizers() -> Iterator:
    import regex
    from presidio_analyzer import Pattern, PatternRecognizer
    from stdnum import iban
    from stdnum.fr import nir

    checks = {"nir": nir.is_valid, "iban": iban.is_valid, "nir13": _nir_without_key}

    class Recognizer(PatternRecognizer):
        def __init__(self, rule: _Rule, index: int) -> None:
            self.rule = rule
            super().__init__(supported_entity=f"ICLI_{rule.kind.upper()}",
                             name=f"icli_{rule.kind}_{index}", supported_language="fr",
                             patterns=[Pattern(rule.kind, rule.regex, rule.score)],
                             global_regex_flags=regex.MULTILINE)

        def validate_result(self, pattern_text: str) -> bool | None:
            if not self.rule.check:
                return None  # keep the pattern's score
            return checks[self.rule.check](re.sub(r"[\s.]", "", pattern_text))

    for index, rule in enumerate(_RULES):
        yield Recognizer(rule, index)


_ANALYZER = _Analyzer()


def load() -> None:
    """Load the model now (it is otherwise loaded by the first analysis)."""
    _ANALYZER.engine()


# -- analysis -----------------------------------------------------------------------------
def _masked(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with the product's placeholders blanked (same length, same offsets), and
    where they were: they are neither findings nor the context of one."""
    spans = [m.span() for m in _PLACEHOLDER_RE.finditer(text)]
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text, spans


def _name_span(text: str, start: int, end: int) -> tuple[int, int]:
    """A name span without the titles it starts with, nor what comes before a title inside
    it ("Situation de Monsieur", "Monsieur Le Maire"), nor trailing punctuation."""
    for match in re.finditer(r"[\w.]+", text[start:end]):
        if _fold(match.group()) in _TITLES:
            start = start + match.end()
            start += len(text[start:end]) - len(text[start:end].lstrip(" .,;:"))
            break
    while True:
        match = re.match(r"([\w.]+)\s+", text[start:end])
        if not match or _fold(match.group(1)) not in _TITLES:
            break
        start += match.end()
    while end > start and text[end - 1] in " .,;:'’-":
        end -= 1
    return start, end


def _common(span: str, after_cue: bool = False) -> bool:
    """A span made only of titles, particles and words of the field (no one's name).

    Right after a person cue ("son fils Ali", "Mme Mai"), a word written as a name (a
    capital, then small letters) is a name unless the product's own labels use it: the
    acronyms and common words of the field count there only in capitals ("son fils CP")."""
    words = _words(span)
    if after_cue and any(w[0].isupper() and not w.isupper() for w in words):
        return all(_fold(w) in _NEUTRAL_WORDS or _fold(w) in _LABEL_VOCABULARY
                   or (w.isupper() and _fold(w) in _VOCABULARY) for w in words)
    if _fold(span) in _COMMON_WORDS or _fold(span) in _ACRONYMS:  # also "cm2", "cd93"
        return True
    return all(_fold(w) in _VOCABULARY or _fold(w) in _NEUTRAL_WORDS for w in words)


def _acronym(span: str) -> bool:
    """One word in capitals ("MASP", "SAAD"): in a sheet, the acronym of a scheme or an
    institution far more often than an establishment's name; the model tags them ORG. An
    employer or establishment known by its acronym comes with a cue ("chez", "l'EHPAD"),
    and the cue rules find it."""
    return " " not in span.strip() and span.isupper() and len(span.strip()) <= 6


def _capitalised(text: str, start: int, end: int) -> bool:
    """Whether the name at ``text[start:end]`` is written with a capital (after its
    particles: "de Villiers", "ben Salah")."""
    for word in _words(text[start:end]):
        if _fold(word) not in _NEUTRAL_WORDS:
            return word[0].isupper()
    return False


def _sentence_word(text: str, start: int, end: int) -> bool:
    """One capitalised word opening a sentence: the model often takes it for a name."""
    return (" " not in text[start:end].strip()
            and re.search(r"(?:^|[.!?:;]\s+|\n\s*|-\s+)$", text[:start]) is not None)


def _after_person_cue(text: str, start: int) -> bool:
    return _PERSON_CUE_RE.search(text[max(0, start - 40):start]) is not None


def _role(text: str, start: int, end: int, kind: str) -> str:
    roles, role_re = ((_PERSON_ROLES, _PERSON_ROLE_RE) if kind == "person"
                      else (_ORGANISATION_ROLES, _ORGANISATION_ROLE_RE))
    window = text[max(0, start - _ROLE_WINDOW):end if kind == "organisation" else start]
    matches = list(role_re.finditer(window))
    if not matches:
        return REPLACEMENTS[kind]
    nearest = max(matches, key=lambda m: m.end())
    return roles[int(nearest.lastgroup[1:])][0]


# The spans found in the last texts analysed (offsets, kinds, scores, replacements: no text),
# so that a text shown, saved, submitted and screened again is analysed once.
_ANALYSED: DigestMemo[tuple] = DigestMemo(4096)


def forget_analyses() -> None:
    """Empty the memo: the next analysis of any text runs the detector (benchmarks)."""
    _ANALYSED.clear()


def analyse(text: str) -> list[Detection]:
    """The identifying spans of ``text``, in order, without overlaps."""
    if not text.strip():
        return []
    digest = _ANALYSED.digest(text.encode("utf-8", "surrogatepass"))
    spans = _ANALYSED.get(digest)
    if spans is None:
        spans = tuple((d.kind, d.start, d.end, d.score, d.replacement)
                      for d in _detections(text))
        _ANALYSED.put(digest, spans)
    return [Detection(kind, start, end, score, replacement, text[start:end])
            for kind, start, end, score, replacement in spans]


def _detections(text: str) -> list[Detection]:
    masked, placeholders = _masked(text)
    analysis = _ANALYZER.analyse(masked)
    pos = {token.idx: token.pos_ for token in analysis.doc}
    spans: list[tuple[str, int, int, float]] = []
    for result in analysis.results:
        if result.entity_type in _NER_KINDS:
            kind, score = _NER_KINDS[result.entity_type]
            start, end = _name_span(masked, result.start, result.end)
            cued = _after_person_cue(masked, start)
            if end - start < 2 or _common(masked[start:end], cued and kind == "person"):
                continue
            if kind == "organisation" and _acronym(masked[start:end]):
                continue
            if not _capitalised(masked, start, end):
                if kind == "organisation":
                    continue
                score = _lower_case_score(masked, start, end)
                if not score:
                    continue
            elif _sentence_word(masked, start, end) and not cued:
                if kind == "organisation":
                    continue
                if _ANALYZER.known(_fold(masked[start:end])):
                    if pos.get(start) != "PROPN":
                        continue  # "Famille :", "Orientation" opening a line
                    score = _SENTENCE_START_SCORE
        else:
            kind = result.entity_type.removeprefix("ICLI_").lower()
            start, end, score = result.start, result.end, result.score
            if kind in ("person", "organisation"):
                start, end = _name_span(masked, start, end)
                # The person rules all start after a cue (a title, a family word).
                if end - start < 2 or _common(masked[start:end], kind == "person"):
                    continue
        spans.append((kind, start, end, score))
    spans += _lower_case_names(masked, pos)
    candidates = [Detection(kind, start, end, score,
                            _role(masked, start, end, kind)
                            if kind in ("person", "organisation") else REPLACEMENTS[kind],
                            text[start:end])
                  for kind, start, end, score in spans
                  if not any(s < end and start < e for s, e in placeholders)]
    return _without_overlaps(candidates)


def _lower_case_score(text: str, start: int, end: int) -> float:
    """The score of a person span the model found in lower case: high after a cue ("le dr
    lambert"), lower if its words are not all common French words ("kevin durand"), none
    otherwise."""
    if _after_person_cue(text, start):
        return _LOWER_CASE_SCORES[0]
    words = [w for w in _words(text[start:end]) if _fold(w) not in _NEUTRAL_WORDS]
    unknown = [w for w in words if not _ANALYZER.known(w)]
    if words and (len(unknown) == len(words) or (len(words) > 1 and unknown)):
        return _LOWER_CASE_SCORES[1]
    return 0.0


def _lower_case_names(text: str, pos: dict[int, str]) -> list[tuple[str, int, int, float]]:
    """Names written in lower case after a person cue ("son fils moussa", "le dr lambert"):
    the candidate words are given a capital in a view of the text the entity recogniser
    reads again; a candidate unknown to the French lexicon is a name even if it does not."""
    candidates: list[tuple[int, int, bool]] = []  # start, end, unknown to the lexicon
    for match in _LOWER_CUE_RE.finditer(text):
        start, end = match.span("name")
        while True:
            first = len(candidates)
            for word in re.finditer(r"[^\W\d_][\w'’-]*", text[start:end]):
                w_start, w_end = start + word.start(), start + word.end()
                if re.fullmatch(rf"{_PARTICLES}|{_KIN_CUE}", word.group().lower()):
                    continue  # "la fille aînée, inès", "m. de villiers"
                core = re.sub(r"^[dl]['’]", "", word.group())  # "d'un", "d'almeida"
                if not word.group()[0].islower() or _fold(core) in _VOCABULARY:
                    break
                unknown = not _ANALYZER.known(core)
                if not unknown and (pos.get(w_start, "X") in _NOT_NAME_POS
                                    or len(candidates) > first):
                    break  # a known word: the first one only ("son fils moussa")
                candidates.append((w_start, w_end, unknown))
            if len(candidates) == first:
                break
            # A list of names: "ses enfants adam et rayan", "sa fille awa, 5 ans".
            more = _NAME_LIST_RE.match(text, candidates[-1][1])
            if not more:
                break
            start, end = more.span("name")
    if not candidates:
        return []
    view = list(text)
    for start, _, _ in candidates:
        view[start] = view[start].upper()[:1] or view[start]
    found: list[tuple[str, int, int, float]] = []
    for start, end in _ANALYZER.people("".join(view)):
        start, end = _name_span(text, start, end)
        inside = [c for c in candidates if start <= c[0] and c[1] <= end]
        if inside and not _common(text[start:end]):
            found.append(("person", start, end, _LOWER_CASE_SCORES[0]))
    for start, end, unknown in candidates:
        if unknown and not any(s <= start < e for _, s, e, _ in found):
            found.append(("person", start, end, HIGH_CONFIDENCE))
    return found


def _without_overlaps(candidates: list[Detection]) -> list[Detection]:
    """Of overlapping spans keep the most certain, then the longest (a pattern beats NER)."""
    kept: list[Detection] = []
    for candidate in sorted(candidates, key=lambda d: (-d.score, d.start - d.end)):
        if all(candidate.end <= k.start or candidate.start >= k.end for k in kept):
            kept.append(candidate)
    return sorted(kept, key=lambda d: d.start)


# -- the sheet's texts and their review -----------------------------------------------------
def text_units(values: dict[str, Any]) -> dict[str, str]:
    """The sheet's free texts that reach the instance, by unit name (form input names)."""
    units: dict[str, str] = {}
    for spec in FIELDS:
        if not spec.free_text or spec.data_class == IDENTIFYING:
            continue  # the referent's own professional contact never leaves their structure
        if spec.kind == "actions":
            for row, entry in enumerate(values.get(spec.name) or []):
                for key in ACTION_TEXT_KEYS:
                    units[f"action_{row}_{key}"] = str(entry.get(key) or "")
        else:
            units[spec.name] = str(values.get(spec.name) or "")
    return {name: text for name, text in units.items() if text.strip()}


def unit_field(unit: str) -> str:
    """The declared field a text unit belongs to (``action_0_resultat`` -> ``actions``)."""
    return "actions" if unit not in FIELDS_BY_NAME else unit


def _review(values: dict[str, Any], unit: str) -> dict[str, Any]:
    entry = values.get(REVIEW_KEY, {}).get(unit, {})
    return {"dismissed": [list(d) for d in entry.get("dismissed", [])],
            "accepted": dict(entry.get("accepted", {}))}


def findings(values: dict[str, Any]) -> dict[str, list[Finding]]:
    """Every detection in the sheet's free texts, by unit, marked if it was dismissed."""
    result: dict[str, list[Finding]] = {}
    for unit, text in text_units(values).items():
        dismissed = {tuple(d) for d in _review(values, unit)["dismissed"]}
        found = [Finding(unit, d, (d.kind, d.text) in dismissed) for d in analyse(text)]
        if found:
            result[unit] = found
    return result


def unhandled(values: dict[str, Any],
              found: dict[str, list[Finding]] | None = None) -> list[Finding]:
    """Findings neither replaced, edited away nor dismissed: submission waits for them
    (``found``: ``findings(values)`` when the caller has it already)."""
    found = findings(values) if found is None else found
    return [f for unit_found in found.values() for f in unit_found if not f.dismissed]


def unhandled_high_confidence(values: dict[str, Any]) -> list[Finding]:
    """What the dossier builder refuses: unhandled findings of high confidence."""
    return [f for f in unhandled(values) if f.detection.high_confidence]


class FindingGoneError(ValueError):
    """The text changed since the page was shown: that finding is no longer there."""


def _find(values: dict[str, Any], key: str) -> Finding:
    unit = key.split(":", 1)[0]
    for finding in findings(values).get(unit, []):
        if finding.key == key:
            return finding
    raise FindingGoneError(unit)


def _with_review(values: dict[str, Any], unit: str, review: dict[str, Any]) -> dict[str, Any]:
    return {**values, REVIEW_KEY: {**values.get(REVIEW_KEY, {}), unit: review}}


def accept(values: dict[str, Any], key: str) -> dict[str, Any]:
    """New values with that finding replaced by its proposed placeholder (counted)."""
    finding = _find(values, key)
    d = finding.detection
    review = _review(values, finding.unit)
    review["accepted"][d.kind] = review["accepted"].get(d.kind, 0) + 1
    values = _with_review(values, finding.unit, review)
    text = text_units(values)[finding.unit]
    replaced = text[:d.start] + d.replacement + text[d.end:]
    if finding.unit in FIELDS_BY_NAME:
        return {**values, finding.unit: replaced}
    _, row, column = finding.unit.split("_", 2)
    rows = [dict(r) for r in values["actions"]]
    rows[int(row)][column] = replaced
    return {**values, "actions": rows}


def dismiss(values: dict[str, Any], key: str) -> dict[str, Any]:
    """New values remembering that these words, of this kind, identify nobody here."""
    finding = _find(values, key)
    review = _review(values, finding.unit)
    review["dismissed"].append([finding.detection.kind, finding.detection.text])
    return _with_review(values, finding.unit, review)


def decision_counts(values: dict[str, Any],
                    found: dict[str, list[Finding]] | None = None) -> dict[tuple[str, str], int]:
    """(kind, outcome) -> count of the referent's decisions still in force: replacements
    made, and dismissals whose words are still in the text. Counts only, never words.
    (``found``: ``findings(values)`` when the caller has it already.)"""
    counts: Counter[tuple[str, str]] = Counter()
    for unit in values.get(REVIEW_KEY, {}):
        for kind, number in _review(values, unit)["accepted"].items():
            counts[(kind, "accepted")] += number
    found = findings(values) if found is None else found
    for unit_found in found.values():
        counts.update((f.detection.kind, "dismissed") for f in unit_found if f.dismissed)
    return dict(counts)


def review_for_column(review: dict[str, Any], column: str) -> dict[str, Any]:
    """The review entries to seal in ``column`` (each unit's with its field's class)."""
    return {unit: entry for unit, entry in review.items()
            if FIELDS_BY_NAME[unit_field(unit)].column == column}


def segments(text: str, found: Sequence[T],
             span: Callable[[T], tuple[int, int]] = lambda f: (f.detection.start,
                                                              f.detection.end),
             ) -> list[tuple[str, T | None]]:
    """``text`` cut into plain parts and found parts, to highlight the findings in place
    (``span`` gives a finding's position: sheets' findings, or texts typed in session)."""
    parts: list[tuple[str, T | None]] = []
    last = 0
    for finding in sorted(found, key=lambda f: span(f)[0]):
        start, end = span(finding)
        parts += [(text[last:start], None), (text[start:end], finding)]
        last = end
    parts.append((text[last:], None))
    return [(part, finding) for part, finding in parts if part]


def apply(values: dict[str, Any], decision: str) -> dict[str, Any]:
    """``accept|<key>`` or ``dismiss|<key>`` (a form button's value) applied to ``values``."""
    action, _, key = decision.partition("|")
    if action == "accept":
        return accept(values, key)
    if action == "dismiss":
        return dismiss(values, key)
    raise FindingGoneError(action)
