"""Templates against their context builders, and hostile values rendered safely."""

import io
import re
import zipfile
from pathlib import Path

import pytest
from docx import Document
from docx.oxml.ns import qn

from generator.contexts import BUILDERS, clean, french_date, sample_context, slot_time
from generator.render import TEMPLATES, RenderError, render, template_path, undeclared_variables
from shared.models.document import DOCUMENT_KINDS
from tests.helpers import document_text

HOSTILE = [
    "& < > \" '",
    "{{ 7*7 }} {% if true %}jinja{% endif %} {%p endfor %} {%tr endfor %}",
    "ctrl\x00\x01\x07\x0b\x0c\x1b\x7f\x85\ud800 chars",
    "\u202eRTL override",
    "emoji 🙂👩🏾‍⚕️",
    "ligne 1\nligne 2\ttabulée",
    "x" * 5000,
]
KINDS = sorted(TEMPLATES)


def hostile(value, text: str):
    """The same context with every non-empty string replaced by ``text``."""
    if isinstance(value, dict):
        return {key: hostile(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [hostile(item, text) for item in value]
    if isinstance(value, str) and value:
        return text
    return value


def test_every_document_kind_has_a_template_and_a_builder():
    assert set(TEMPLATES) == set(BUILDERS) == set(DOCUMENT_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_template_uses_exactly_its_builders_keys(settings, kind):
    _builder, keys = BUILDERS[kind]
    assert undeclared_variables(template_path(settings.templates_dir, kind)) == keys


@pytest.mark.parametrize("kind", KINDS)
def test_the_sample_context_has_exactly_the_keys_and_fills_every_loop(kind):
    context = sample_context(kind)
    assert set(context) == BUILDERS[kind][1]

    longest: dict[str, int] = {}

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            longest[path] = max(longest.get(path, 0), len(value))
            for item in value:
                walk(item, f"{path}[]")

    walk(context, kind)
    assert all(longest.values()), "every loop of the template gets at least one item"


@pytest.mark.parametrize("kind", KINDS)
def test_the_sample_renders_without_leftover_tags(settings, kind):
    data = render(template_path(settings.templates_dir, kind), sample_context(kind))
    text = document_text(data)
    assert "{{" not in text and "{%" not in text and "}}" not in text
    context = sample_context(kind)
    # Session documents name their session; the information note, its sheet (no session yet).
    assert (context["meeting_date"] if "meeting_date" in context else context["reference"]) in text


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_render_literally_into_a_document_word_can_open(settings, kind, value):
    safe = clean(value)
    context = hostile(sample_context(kind), safe)
    data = render(template_path(settings.templates_dir, kind), context)
    text = document_text(data)  # python-docx parses it: the XML is well formed
    assert safe in text
    if "7*7" in safe:
        assert "49" not in text  # never evaluated


@pytest.mark.parametrize("kind", KINDS)
def test_every_document_carries_logos_notice_version_and_page_x_of_y(settings, kind):
    context = sample_context(kind)
    data = render(template_path(settings.templates_dir, kind), context)
    text = document_text(data)
    if kind == "information":  # given to the person: no « ne pas diffuser » stamp
        assert "Information de la personne accompagnée" in text
        assert "ne pas diffuser" not in text
    else:
        assert "Document confidentiel – secret professionnel (art. L.262-44 CASF)" in text
    assert f"version {context['version']} du {context['generated_on']}" in text
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        headers = [n for n in names if re.fullmatch(r"word/header\d*\.xml", n)]
        footers = "".join(archive.read(n).decode() for n in names if n.startswith("word/footer"))
        header_rels = "".join(archive.read(n).decode() for n in names
                              if re.fullmatch(r"word/_rels/header\d*\.xml\.rels", n))
        images = [n for n in names if n.startswith("word/media/")]
        sizes = [archive.getinfo(n).file_size for n in images]
    assert headers and "NUMPAGES" in footers and "PAGE" in footers
    assert header_rels.count("relationships/image") == 2  # the two replaceable logos
    assert len(images) == 2 and max(sizes) < 20_000  # kept small
    # Word checks spelling and hyphenates in French
    document = Document(io.BytesIO(data))
    default = document.styles.element.find(qn("w:docDefaults")).find(
        qn("w:rPrDefault")).find(qn("w:rPr")).find(qn("w:lang"))
    assert default.get(qn("w:val")) == "fr-FR"
    assert document.core_properties.language == "fr-FR"


def test_the_placeholder_logos_are_small_valid_pngs():
    logos = Path(__file__).resolve().parents[2] / "templates_docx" / "logos"
    for name in ("departement.png", "france_travail.png"):
        data = (logos / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) < 5_000


def test_the_readme_lists_every_template_and_variable():
    readme = (Path(__file__).resolve().parents[2] / "templates_docx" / "README.md").read_text()
    for kind, filename in TEMPLATES.items():
        assert filename in readme and f"`{kind}`" in readme
        for key in BUILDERS[kind][1]:
            assert f"`{key}`" in readme, (kind, key)


def test_control_characters_are_removed_by_the_builders_cleaner():
    assert clean("a\x00b\x1fc\td\ne\x7f\x85\ud800") == "abc\td\ne"
    assert clean(None) == ""


def test_french_formats():
    from datetime import date

    assert french_date(date(2026, 12, 15)) == "mardi 15 décembre 2026"
    assert french_date(date(2027, 2, 1)) == "lundi 1er février 2027"
    assert slot_time("09:05") == "9\u00a0h\u00a005" and slot_time("14:30") == "14\u00a0h\u00a030"


def test_a_broken_template_raises_a_render_error_with_its_place(tmp_path):
    from docx import Document as NewDocument

    broken = tmp_path / "broken.docx"
    document = NewDocument()
    document.add_paragraph("{% for x in %}")
    document.save(broken)
    with pytest.raises(RenderError) as error:
        render(broken, {})
    assert error.value.template == "broken.docx"
    assert error.value.place == ("dans le corps du document, erreur de syntaxe\u00a0: une "
                                 "expression est attendue, « %} » trouvé")

    failing = tmp_path / "failing.docx"  # compiles, fails while filling: part and reason
    document = NewDocument()
    document.add_paragraph("{{ titre }}")
    document.add_paragraph("{{ seance.lieu.salle }}")
    document.save(failing)
    with pytest.raises(RenderError) as error:
        render(failing, {"titre": "Zyxcanari", "seance": {}})
    place = error.value.place
    assert place == "dans le corps du document\u00a0: « lieu » n'existe pas pour cette variable"
    assert "Zyxcanari" not in place


def test_a_template_cannot_reach_python_internals(tmp_path):
    from docx import Document as NewDocument

    evil = tmp_path / "evil.docx"
    document = NewDocument()
    document.add_paragraph("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    document.save(evil)
    with pytest.raises(RenderError):
        render(evil, {})


@pytest.mark.parametrize("kind", KINDS)
def test_the_templates_fixed_text_follows_french_typography(settings, kind):
    """A non-breaking space before « : ; ? ! » and inside « … »: never an ordinary one."""
    text = document_text(render(template_path(settings.templates_dir, kind),
                                sample_context(kind)))
    assert not re.search(r" [:;?!»]|« ", text), re.findall(r".{20} [:;?!»]|« .{20}", text)
