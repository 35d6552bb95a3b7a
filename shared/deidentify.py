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
from typing import Any, TypeVar

from shared.memo import DigestMemo
from shared.protected import IDENTIFYING
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
# The role a name plays, from the words just before it: the proposed replacement says it.
_PERSON_ROLES = (
    ("[enfant]", r"fils|filles?|enfants?|bébé|aîné|aînée|cadet|cadette|benjamine?|neveu|"
                 r"nièce|petite?-(?:fils|fille)"),
    ("[médecin]", r"dr|docteure?|médecin|psychiatre|psychologue|pédiatre|généraliste|"
                  r"infirmière?|kinésithérapeute|kiné|sage-femme|orthophoniste"),
    ("[conjoint·e]", r"conjointe?|mari|époux|épouse|compagnon|compagne|concubine?|"
                     r"ex-(?:mari|compagnon|compagne|conjointe?|époux|épouse)"),
    ("[bailleur]", r"propriétaire|bailleur|bailleresse|logeur|logeuse"),
    ("[employeur]", r"employeur|employeuse|patron|patronne|gérante?|directeur|directrice"),
)
_ORGANISATION_ROLES = (
    ("[établissement scolaire]", r"école|ecole|collège|college|lycée|lycee|crèche|creche|"
                                 r"scolaire|maternelle|scolarisée?"),
    ("[employeur]", rf"chez|employeur|embauchée?|salariée?|recrutée?|travaill\w*|intérim|"
                    rf"cdd|cdi|contrat|{_BUSINESSES}|{_LEGAL_FORMS}"),
    ("[bailleur]", r"bailleur|propriétaire|logement|hlm|loyer"),
    ("[structure de soins]", r"hôpital|hopital|clinique|soins|santé|cmp|médical"),
)
_ROLE_WINDOW = 45  # characters looked at before a name


def _role_regex(roles: tuple[tuple[str, str], ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?P<r{n}>\\b(?:{words})\\b)"
                               for n, (_, words) in enumerate(roles)), re.IGNORECASE)


_PERSON_ROLE_RE = _role_regex(_PERSON_ROLES)
_ORGANISATION_ROLE_RE = _role_regex(_ORGANISATION_ROLES)

# Words of ordinary social-work French that the NER model mistakes for names: titles,
# institutions and schemes, places that identify nobody (the communes of the département).
_TITLES = {"madame", "monsieur", "mme", "mmes", "m", "mr", "mlle", "mademoiselle", "dr",
           "docteur", "docteure", "me", "maitre", "pr", "professeur"}
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

_UPPER = "A-ZÀÂÄÇÉÈÊËÎÏÔÖÙÛÜ"
_NAME_WORD = rf"[{_UPPER}][\w'’&-]*"
_LINK = r"(?:de la|de l['’]|de|du|des|d['’]|l['’]|la|le|les|et|aux|au|sur|sous|en)"
_STREET_TYPES = (r"rue|avenue|av\.|boulevard|bd|allée|allee|impasse|place|chemin|route|quai|"
                 r"cours|square|villa|cité|cite|passage|sentier|sente|voie|rond-point|mail|"
                 r"résidence|residence|esplanade|parvis|promenade|ruelle")
_MONTHS = (r"janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|"
           r"octobre|novembre|décembre|decembre")
_SCHOOLS = (r"école|ecole|collège|college|lycée|lycee|crèche|creche|groupe scolaire|"
            r"halte-garderie|IME|ITEP|SEGPA|Ulis")
_EMPLOYER_CUES = (r"\bchez|employeur|employée?\s+(?:par|chez|de)|embauchée?\s+(?:par|chez)|"
                  r"salariée?\s+(?:de|d['’]|chez)|recrutée?\s+par|"
                  r"travaill\w*\s+(?:pour|chez|à|au)|en\s+(?:CDD|CDI|intérim|mission)\s+"
                  r"(?:chez|à|au)|la\s+société|l['’]entreprise|l['’]enseigne|"
                  r"l['’]agence\s+d['’]intérim|le\s+magasin|le\s+restaurant|le\s+garage")



@dataclass(frozen=True)
class _Rule:
    kind: str
    regex: str
    score: float
    check: str = ""  # name of the python-stdnum key check, if any


_RULES = (
    _Rule("person", rf"(?<=\b(?:Dr|Docteure?|Pr|Mme|Madame|M\.|Monsieur|Mlle|Me|Maître)\s)"
                    rf"(?!(?:{_LINK})\b){_NAME_WORD}(?:[ -]{_NAME_WORD})?", 0.85),
    _Rule("phone", r"(?<![\w+])(?:(?:\+|00)\s?33\s?(?:\(0\)\s?)?[1-9]|0[1-9])"
                   r"(?:[ .-]?\d{2}){4}(?!\d)", 0.9),
    _Rule("email", r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b", 0.95),
    _Rule("nir", r"(?<![\w])[12]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[ABab])\s?\d{3}\s?\d{3}\s?\d{2}"
                 r"(?!\d)", 0.95, "nir"),
    _Rule("iban", r"(?<![A-Z0-9])FR\d{2}(?:\s?[A-Z0-9]{4}){5}\s?[A-Z0-9]{3}(?![A-Z0-9])",
          0.95, "iban"),
    _Rule("iban", r"(?<![A-Z0-9])(?!FR)[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}"
                  r"(?:\s?[A-Z0-9]{1,3})?(?![A-Z0-9])", 0.9, "iban"),
    _Rule("caf", r"(?<=(?i:\bcaf\b|allocataire|matricule)[^\d\n]{0,25})\d{7}(?![\w])", 0.85),
    _Rule("france_travail", r"(?<![\w])\d{7}[A-Z](?![\w])", 0.85),
    _Rule("france_travail", r"(?<=(?i:france\s+travail|p[ôo]le\s+emploi|identifiant|\bFT\b)"
                            r"[^\d\n]{0,30})\d{8}(?![\w])", 0.85),
    _Rule("address", rf"(?<![\w])\d{{1,4}}(?:\s?(?:bis|ter|[A-Da-d]))?,?\s(?i:{_STREET_TYPES})"
                     rf"\s(?:(?i:{_LINK})\s?)?(?:{_NAME_WORD}|\d{{1,4}}(?!\d))"
                     rf"(?:[ -](?:(?i:{_LINK})\s?)?(?:{_NAME_WORD}|\d{{1,4}}(?![\d/])))*", 0.9),
    _Rule("postcode", r"(?<![\w])93\d{3}(?!\d)", 0.7),
    _Rule("postcode", rf"(?<![\w])\d{{5}}(?=\s[{_UPPER}][a-zé])", 0.6),
    _Rule("birth_date", rf"(?<=(?i:\bnée?s?\b|\bné\(e\)|naissance|\bDDN\b)[^\n\d]{{0,15}})"
                        rf"(?:\d{{1,2}}[/.-]\d{{1,2}}[/.-](?:19|20)?\d{{2}}(?!\d)|"
                        rf"\d{{1,2}}(?:er)?\s(?i:{_MONTHS})\s(?:19|20)\d{{2}})", 0.85),
    _Rule("organisation", rf"(?i:{_SCHOOLS})\s(?:(?i:maternelle|élémentaire|elementaire|"
                          rf"primaire|professionnel|polyvalent|privée?|publique?|municipale)"
                          rf"\s)?(?:(?i:{_LINK})\s?)?{_NAME_WORD}"
                          rf"(?:\s(?:(?i:{_LINK})\s?)?{_NAME_WORD})*", 0.85),
    _Rule("person", rf"(?<=\b(?i:{_RELATIVES})(?:\s(?i:de Madame|de Monsieur|de Mme|de M\.))?"
                    rf"\s?[,:]?\s(?:{_NAME_WORD}(?:\s\(\d+\s?ans\))?(?:,\s|\set\s))*)"
                    rf"{_NAME_WORD}", 0.85),
    _Rule("organisation", rf"(?:\b(?i:{_BUSINESSES})\s|\b(?:{_LEGAL_FORMS})\s)"
                          rf"{_NAME_WORD}(?:\s(?:&\s)?{_NAME_WORD})*", 0.9),
    _Rule("organisation", rf"(?<=(?i:{_EMPLOYER_CUES})[,:]?\s+)"
                          rf"(?!(?i:m\.|mme|madame|monsieur|mr|mlle|dr|docteur|lui|elle|eux)\b)"
                          rf"{_NAME_WORD}(?:\s(?:&\s|(?i:de|du|des|et)\s)?{_NAME_WORD})*",
          0.86),
)
# NER labels of the French pipeline: persons are high confidence, organisations medium
# (most named organisations in a sheet are partner institutions); places are left to the
# address and postcode rules (a commune alone identifies nobody).
_NER_KINDS = {"PERSON": ("person", 0.85), "ORGANIZATION": ("organisation", 0.6)}


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
class _Analyzer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine = None

    def engine(self):
        with self._lock:
            if self._engine is None:
                self._engine = _build_engine()
            return self._engine

    def analyse(self, text: str) -> list:
        engine = self.engine()
        # One analysis at a time: spaCy pipelines are not documented as thread-safe, and
        # one field takes tens of milliseconds.
        with self._lock:
            return engine.analyze(text=text, language="fr",
                                  entities=[*_NER_KINDS, *(f"ICLI_{r.kind.upper()}"
                                                          for r in _RULES)])


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


def _pattern_recognizers() -> Iterator:
    import regex
    from presidio_analyzer import Pattern, PatternRecognizer
    from stdnum import iban
    from stdnum.fr import nir

    checks = {"nir": nir.is_valid, "iban": iban.is_valid}

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
            return checks[self.rule.check](re.sub(r"\s", "", pattern_text))

    for index, rule in enumerate(_RULES):
        yield Recognizer(rule, index)


_ANALYZER = _Analyzer()


def load() -> None:
    """Load the model now (it is otherwise loaded by the first analysis)."""
    _ANALYZER.engine()


# -- analysis -----------------------------------------------------------------------------
def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip(" .,;:'’")


def _strip_titles(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop leading titles ("Madame", "Dr") and trailing punctuation from a name span."""
    while True:
        match = re.match(r"([\w.]+)\s+", text[start:end])
        if not match or _fold(match.group(1)) not in _TITLES:
            break
        start += match.end()
    while end > start and text[end - 1] in " .,;:'’-":
        end -= 1
    return start, end


def _common(span: str) -> bool:
    """A span made only of titles and everyday social-work words (no one's name)."""
    folded = _fold(span)
    if folded in _COMMON_WORDS:
        return True
    words = [w for w in re.split(r"[\s]+", folded) if w]
    return all(w in _TITLES or w in _COMMON_WORDS for w in words)


def _sentence_word(text: str, start: int, end: int) -> bool:
    """One capitalised word opening a sentence: the model often takes it for a name."""
    return " " not in text[start:end] and re.search(r"(?:^|[.!?:]\s+)$", text[:start]) is not None


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
    candidates: list[Detection] = []
    for result in _ANALYZER.analyse(text):
        if result.entity_type in _NER_KINDS:
            kind, score = _NER_KINDS[result.entity_type]
            start, end = _strip_titles(text, result.start, result.end)
            if (end - start < 2 or not text[start].isupper() or _common(text[start:end])
                    or (kind == "organisation" and _sentence_word(text, start, end))):
                continue
        else:
            kind = result.entity_type.removeprefix("ICLI_").lower()
            start, end, score = result.start, result.end, result.score
            if kind in ("person", "organisation") and _common(text[start:end]):
                continue
        replacement = (_role(text, start, end, kind) if kind in ("person", "organisation")
                       else REPLACEMENTS[kind])
        candidates.append(Detection(kind, start, end, score, replacement, text[start:end]))
    return _without_overlaps(candidates)


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
