"""Template errors in French and in Word's terms: Jinja's English messages translated, the
place named as a part of the document (« le corps du document », « l'en-tête ») and a
paragraph's text rather than a line of XML."""

from __future__ import annotations

import re

# Jinja's token names, as the administrator typed them.
_TOKENS = {"end of print statement": "}}", "end of statement block": "%}",
           "end of template": "la fin du modèle", "name": "un nom", "string": "un texte",
           "integer": "un nombre", "rparen": ")", "rbracket": "]", "rbrace": "}",
           "colon": ":", "comma": ",", "assign": "="}


def _token(name: str) -> str:
    return _TOKENS.get(name, name)


def _closing(tags: str) -> str:
    return " ou ".join(f"« {tag} »" for tag in re.findall(r"'(\w+)'", tags))


# (pattern of Jinja's message, French rendering), the first match wins.
_MESSAGES: tuple[tuple[re.Pattern[str], object], ...] = (
    (re.compile(r"Unexpected end of template\. Jinja was looking for the following tags: "
                r"(.+?)\. The innermost block that needs to be closed is '(\w+)'", re.S),
     lambda m: f"le modèle se termine sans fermer le bloc « {m[2]} » (balise attendue\u00a0: "
               f"{_closing(m[1])})"),
    (re.compile(r"Encountered unknown tag '(\w+)'\. Jinja was looking for the following "
                r"tags: (.+?)\. The innermost block that needs to be closed is '(\w+)'", re.S),
     lambda m: f"balise « {m[1]} » inattendue dans le bloc « {m[3]} » (balise attendue\u00a0: "
               f"{_closing(m[2])})"),
    (re.compile(r"Encountered unknown tag '(\w+)'"),
     lambda m: f"balise inconnue « {m[1]} »"),
    (re.compile(r"unexpected end of template, expected '(.+?)'"),
     lambda m: f"le modèle se termine alors que « {_token(m[1])} » est attendu"),
    (re.compile(r"unexpected end of template"),
     lambda m: "le modèle se termine au milieu d'une balise"),
    (re.compile(r"expected token '(.+?)', got '(.+?)'"),
     lambda m: f"« {_token(m[1])} » attendu, « {_token(m[2])} » trouvé"),
    (re.compile(r"Expected an expression, got '(.+?)'"),
     lambda m: f"une expression est attendue, « {_token(m[1])} » trouvé"),
    (re.compile(r"unexpected char '(.+?)'"),
     lambda m: f"caractère « {m[1]} » inattendu"),
    (re.compile(r"unexpected '(.+?)'"),
     lambda m: f"« {_token(m[1])} » inattendu"),
    (re.compile(r"tag name expected"), lambda m: "nom de balise attendu après « {% »"),
    (re.compile(r"'([\w.]+)' is undefined"),
     lambda m: f"variable « {m[1]} » inconnue"),
    (re.compile(r"'(.+?)' has no attribute '(\w+)'"),
     lambda m: f"« {m[2]} » n'existe pas pour cette variable"),
)


def french_message(message: str) -> str:
    """Jinja's message in French; one not known yet is quoted as it is, said so."""
    for pattern, render in _MESSAGES:
        match = pattern.search(message)
        if match:
            return render(match)
    text = message if len(message) <= 160 else message[:157] + "…"
    return f"erreur de balise (message de Jinja\u00a0: {text})"


def part_label(partname: str) -> str:
    """Where in the Word file a part sits, in Word's terms."""
    name = partname.lstrip("/")
    if name == "word/document.xml":
        return "le corps du document"
    if re.fullmatch(r"word/header\d*\.xml", name):
        return "l'en-tête de page"
    if re.fullmatch(r"word/footer\d*\.xml", name):
        return "le pied de page"
    if name == "word/footnotes.xml":
        return "les notes de bas de page"
    return name
