"""(Re)build the Word templates of templates_docx/ with python-docx.

The templates are generated so that their Jinja tags stay well-formed (Word splits typed
tags across runs). Run ``python templates_docx/build.py`` after editing this file; the
.docx files are committed. Logos can be replaced in Word without touching the tags.
"""

from __future__ import annotations

from pathlib import Path

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor

HERE = Path(__file__).resolve().parent
CONFIDENTIAL = "Document confidentiel – secret professionnel (art. L.262-44 CASF) – ne pas diffuser"


def _field(paragraph, instruction: str) -> None:
    """Append a Word field (PAGE, NUMPAGES) that Word and LibreOffice compute."""
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), instruction)
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)


def _frame(document, title: str) -> None:
    section = document.sections[0]
    header = section.header.paragraphs[0]
    header.text = "Département de la Seine-Saint-Denis · France Travail"
    header.alignment = WD_ALIGN_PARAGRAPH.CENTER
    notice = section.header.add_paragraph(CONFIDENTIAL)
    notice.alignment = WD_ALIGN_PARAGRAPH.CENTER
    notice.runs[0].font.size = Pt(8)
    notice.runs[0].font.color.rgb = RGBColor(0xA0, 0x10, 0x10)
    footer = section.footer.paragraphs[0]
    footer.text = f"{title} – version {{{{ version }}}} du {{{{ generated_on }}}} – page "
    _field(footer, "PAGE")
    footer.add_run(" / ")
    _field(footer, "NUMPAGES")
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    style = document.styles["Normal"]
    style.font.name = "Calibri"
    style.font.size = Pt(10)


def build_agenda(path: Path) -> None:
    document = Document()
    _frame(document, "Ordre du jour")
    document.add_heading("Ordre du jour", level=0)
    document.add_paragraph(
        "Instance de Concertation Locale Insertion (ICL-I / ICAG) – circonscription de "
        "{{ circonscription }}")
    document.add_paragraph("{{ meeting_date }} à {{ meeting_time }} – {{ place }}")
    document.add_paragraph("Co-pilotage DIEESS / France Travail")
    document.add_paragraph("{%p for part in parts %}")
    document.add_heading("{{ part.number }}. {{ part.title }}", level=1)
    table = document.add_table(rows=4, cols=4)
    table.style = "Table Grid"
    for cell, label in zip(table.rows[0].cells, ["Horaire", "Point", "Présenté par", "Motif"],
                           strict=True):
        cell.text = label
    table.rows[1].cells[0].text = "{%tr for item in part.entries %}"
    for cell, tag in zip(table.rows[2].cells,
                         ["{{ item.time_slot }}", "{{ item.label }}", "{{ item.presenter }}",
                          "{{ item.motif }}"], strict=True):
        cell.text = tag
    table.rows[3].cells[0].text = "{%tr endfor %}"
    document.add_paragraph("{%p endfor %}")
    document.add_paragraph("{%p if not parts %}")
    document.add_paragraph("Aucun point n'est inscrit à l'ordre du jour.")
    document.add_paragraph("{%p endif %}")
    document.add_paragraph(
        "Chaque référent·e n'assiste qu'à la présentation de la situation qu'il ou elle "
        "présente, sur le créneau indiqué. Les situations sont désignées par leur référence "
        "et leur pseudonyme.")
    document.save(path)


TEMPLATES = {"ordre_du_jour.docx": build_agenda}

if __name__ == "__main__":
    for name, builder in TEMPLATES.items():
        builder(HERE / name)
        print(f"wrote {HERE / name}")
