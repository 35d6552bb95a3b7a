"""The template check itself, in process (the web app runs it in a child: see
tests/functional/test_templates_admin.py and test_templates_isolation.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from generator.render import TEMPLATES
from generator.template_check import check
from shared.document_variables import VARIABLES
from shared.domain.templates import TemplateRejectedError
from tests.helpers import docx_with


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_every_built_in_template_passes(settings, kind):
    check(kind, (settings.templates_dir / TEMPLATES[kind]).read_bytes())


def test_an_unknown_variable_is_refused_with_the_variables_of_the_kind():
    with pytest.raises(TemplateRejectedError) as refused:
        check("information", docx_with("{{ reference }}", "{{ nom }}"))
    assert refused.value.code == "variables"
    assert "« nom » (word/document.xml)" in refused.value.reason
    assert ", ".join(sorted(VARIABLES["information"])) in refused.value.reason


def test_the_child_prints_one_json_verdict(settings):
    def verdict(kind: str, data: bytes) -> dict:
        result = subprocess.run([sys.executable, "-m", "generator.check_template", kind],
                                input=data, capture_output=True, check=True, timeout=120)
        return json.loads(result.stdout)

    assert verdict("agenda", (settings.templates_dir / TEMPLATES["agenda"]).read_bytes()) \
        == {"accepted": True}
    refused = verdict("agenda", b"texte")
    assert refused["accepted"] is False and refused["code"] == "not_docx"
    assert not refused["message"].startswith("Modèle refusé")


@pytest.mark.parametrize(("tag", "french"), [
    ("{{ reference }", "« } » inattendu"),
    ("{% for x in actions %}", "le modèle se termine sans fermer le bloc « for » (balise "
                               "attendue\u00a0: « endfor » ou « else »)"),
    ("{% if reference %}{% endfor %}", "balise « endfor » inattendue dans le bloc « if »"),
    ("{% signature %}", "balise inconnue « signature »"),
])
def test_jinjas_messages_are_given_in_french_at_the_paragraph_in_words_terms(tag, french):
    with pytest.raises(TemplateRejectedError) as refused:
        check("information", docx_with("Référence\u00a0:", tag))
    assert french in refused.value.reason
    assert "le corps du document, au paragraphe « " in refused.value.reason
    assert "ligne" not in refused.value.reason and "unexpected" not in refused.value.reason
