"""Templates against their context builders, and hostile values rendered safely."""

import io
import zipfile

import pytest
from docx import Document

from generator.contexts import BUILDERS, clean
from generator.render import TEMPLATES, RenderError, render, template_path, undeclared_variables

HOSTILE = [
    "& < > \" '",
    "{{ 7*7 }} {% if true %}jinja{% endif %}",
    "ctrl\x00\x01\x07\x1b chars",
    "\u202eRTL override",
    "emoji 🙂👩🏾‍⚕️",
    "x" * 5000,
]


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_each_template_uses_exactly_its_builders_keys(settings, kind):
    _builder, keys = BUILDERS[kind]
    assert undeclared_variables(template_path(settings.templates_dir, kind)) == keys


def hostile_agenda(value: str) -> dict:
    item = {"time_slot": value[:5], "label": value, "presenter": value, "motif": value}
    return {"circonscription": value, "meeting_date": value, "meeting_time": value,
            "place": value, "version": value, "generated_on": value,
            "parts": [{"number": 1, "title": value, "entries": [item, item]}]}


def document_text(data: bytes) -> str:
    document = Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        parts.extend(cell.text for row in table.rows for cell in row.cells)
    for section in document.sections:
        parts.extend(p.text for p in section.header.paragraphs + section.footer.paragraphs)
    return "\n".join(parts)


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_render_literally_into_a_document_word_can_open(settings, value):
    safe = clean(value)
    data = render(template_path(settings.templates_dir, "agenda"), hostile_agenda(safe))
    text = document_text(data)  # python-docx parses it: the XML is well formed
    assert safe in text


def test_control_characters_are_removed_by_the_builders_cleaner():
    assert clean("a\x00b\x1fc\td\ne") == "abc\td\ne"


def test_agenda_carries_the_confidentiality_notice_and_page_numbers(settings):
    data = render(template_path(settings.templates_dir, "agenda"), hostile_agenda("ok"))
    assert "L.262-44 CASF" in document_text(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        footers = "".join(archive.read(n).decode() for n in archive.namelist()
                          if n.startswith("word/footer"))
    assert "NUMPAGES" in footers and "PAGE" in footers


def test_a_broken_template_raises_a_render_error_with_its_place(tmp_path):
    from docx import Document as NewDocument

    broken = tmp_path / "broken.docx"
    document = NewDocument()
    document.add_paragraph("{% for x in %}")
    document.save(broken)
    with pytest.raises(RenderError) as error:
        render(broken, {})
    assert error.value.template == "broken.docx"
    assert "modèle" in error.value.place
