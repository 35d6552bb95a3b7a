"""The worker's warm-up builds real-sized documents from synthetic data, in a throwaway
database under throwaway keys (generator/warmup.py)."""

import subprocess
import sys
from pathlib import Path

from generator.contexts import BUILDERS
from generator.render import render, template_path
from generator.warmup import BUILT_KINDS, synthetic_contexts
from tests.generator.test_render import docx_xml

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates_docx"


def test_the_warm_up_builds_the_agenda_and_dossier_of_a_synthetic_session():
    contexts = synthetic_contexts(situations=4)
    assert set(contexts) == set(BUILT_KINDS)
    assert len(contexts["agenda"]["situations"]) == 4
    assert len(contexts["dossier"]["sheets"]) == 4
    for kind, context in contexts.items():
        assert set(context) == BUILDERS[kind][1]
        xml = docx_xml(render(template_path(TEMPLATES_DIR, kind), context))
        assert "Fictif0" not in xml  # pseudonymised like a real one: the synthetic names
        assert context["situations"][0]["pseudonym"] in xml


def test_the_warm_up_touches_neither_the_language_model_nor_a_real_database(tmp_path):
    code = ("import sys; from generator.warmup import synthetic_contexts; "
            "synthetic_contexts(situations=2); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('spacy', "
            "'presidio_analyzer')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []  # no database file, no keyring written
