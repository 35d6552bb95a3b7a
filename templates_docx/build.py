"""(Re)build the Word templates of templates_docx/ with python-docx.

The templates are generated so that their Jinja tags stay well-formed (Word splits typed
tags across runs). Run ``python templates_docx/build.py`` after editing this file; the
.docx files are committed. One template per document, with loops (``{%tr %}`` for table
rows, ``{%p %}`` for repeated paragraphs), never merged sub-documents.

Every page carries the two logos (``logos/departement.png`` and ``logos/france_travail.png``,
small placeholders written here when missing: replace the files and rebuild, or replace the
pictures in Word), the confidentiality mention, and in the footer the date, the version and
"page x / y". The variables of each template are listed in README.md.
"""

from __future__ import annotations

import re
import struct
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_ROW_HEIGHT_RULE, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

HERE = Path(__file__).resolve().parent
LOGOS = HERE / "logos"
LOGO_DEPARTEMENT = LOGOS / "departement.png"
LOGO_FRANCE_TRAVAIL = LOGOS / "france_travail.png"
CONFIDENTIAL = "Document confidentiel – secret professionnel (art. L.262-44 CASF) – ne pas diffuser"
RED = RGBColor(0xA0, 0x10, 0x10)
GREY = RGBColor(0x55, 0x55, 0x55)
HEADER_FILL = "D9E2F3"
BLANK = "_" * 40
FONT = "Calibri"
NBSP = "\u00a0"
# French typography: a non-breaking space before « : ; ? ! » and inside « … » (never before
# « != », a Jinja operator of the tags these texts may hold).
_BEFORE_PUNCTUATION = re.compile(r" ([:;?»]|!(?!=))")
_AFTER_QUOTE = re.compile(r"« ")


def french(text: str) -> str:
    """A template's fixed text with French non-breaking spaces."""
    return _AFTER_QUOTE.sub("«" + NBSP, _BEFORE_PUNCTUATION.sub(NBSP + r"\1", text))

Cells = Sequence[str | Sequence[str]]


# -- placeholder logos: tiny PNGs written with zlib and struct (no imaging library) -----------
_GLYPHS = {
    "A": ".###.|#...#|#...#|#####|#...#|#...#|#...#",
    "C": ".####|#....|#....|#....|#....|#....|.####",
    "D": "####.|#...#|#...#|#...#|#...#|#...#|####.",
    "E": "#####|#....|#....|####.|#....|#....|#####",
    "F": "#####|#....|#....|####.|#....|#....|#....",
    "G": ".####|#....|#....|#.###|#...#|#...#|.###.",
    "I": "#####|..#..|..#..|..#..|..#..|..#..|#####",
    "L": "#....|#....|#....|#....|#....|#....|#####",
    "M": "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",
    "N": "#...#|##..#|#.#.#|#..##|#...#|#...#|#...#",
    "O": ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
    "P": "####.|#...#|#...#|####.|#....|#....|#....",
    "R": "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
    "S": ".####|#....|#....|.###.|....#|....#|####.",
    "T": "#####|..#..|..#..|..#..|..#..|..#..|..#..",
    "V": "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
    "-": ".....|.....|.....|#####|.....|.....|.....",
    " ": ".....|.....|.....|.....|.....|.....|.....",
}


def _png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width))
                   for y in range(height))
    dpi = round(300 / 0.0254)  # 300 dpi: crisp when printed at ~2 cm
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"pHYs", struct.pack(">IIB", dpi, dpi, 1))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def _logo(lines: Sequence[str], background: tuple[int, int, int], ink: tuple[int, int, int],
          band: tuple[int, int, int] | None = None) -> bytes:
    """A placeholder logo: a coloured plate with a few words in a 5×7 pixel font."""
    scale, width, height = 2, 240, 96
    lit: set[tuple[int, int]] = set()
    top = (height - len(lines) * 18) // 2 + 2
    for row, line in enumerate(lines):
        left = (width - len(line) * 12) // 2
        for index, char in enumerate(line):
            for gy, bits in enumerate(_GLYPHS[char].split("|")):
                for gx, bit in enumerate(bits):
                    if bit == "#":
                        for dy in range(scale):
                            for dx in range(scale):
                                lit.add((left + index * 12 + gx * scale + dx,
                                         top + row * 18 + gy * scale + dy))

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        if (x, y) in lit:
            return ink
        if band is not None and x < 10:
            return band
        return background

    return _png(width, height, pixel)


def write_placeholder_logos(force: bool = False) -> None:
    LOGOS.mkdir(exist_ok=True)
    if force or not LOGO_DEPARTEMENT.exists():
        LOGO_DEPARTEMENT.write_bytes(_logo(["LOGO", "DEPARTEMENT", "SEINE-SAINT-DENIS"],
                                           (0x1F, 0x3A, 0x93), (0xFF, 0xFF, 0xFF)))
    if force or not LOGO_FRANCE_TRAVAIL.exists():
        LOGO_FRANCE_TRAVAIL.write_bytes(_logo(["LOGO", "FRANCE", "TRAVAIL"],
                                              (0xFF, 0xFF, 0xFF), (0x1F, 0x2A, 0x5A),
                                              band=(0xE1, 0x00, 0x0F)))


# -- low-level helpers --------------------------------------------------------------------------
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


def _shade(cell, fill: str) -> None:
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill)
    cell._tc.get_or_add_tcPr().append(shading)


def _row_flag(row, flag: str) -> None:
    """w:tblHeader (repeat on each page) or w:cantSplit (keep a row on one page)."""
    element = OxmlElement(flag)
    element.set(qn("w:val"), "true")
    row._tr.get_or_add_trPr().append(element)


def para(container, text: str = "", *, style: str | None = None, bold: bool = False,
         italic: bool = False, size: float | None = None, color: RGBColor | None = None,
         align=None, page_break_before: bool = False, keep_with_next: bool = False,
         before: float = 0):
    paragraph = container.add_paragraph(style=style)
    if before:
        paragraph.paragraph_format.space_before = Pt(before)
    if text:
        run = paragraph.add_run(french(text))
        run.bold = bold or None
        run.italic = italic or None
        if size:
            run.font.size = Pt(size)
        if color is not None:
            run.font.color.rgb = color
    if align is not None:
        paragraph.alignment = align
    if page_break_before:
        paragraph.paragraph_format.page_break_before = True
    if keep_with_next:
        paragraph.paragraph_format.keep_with_next = True
    return paragraph


def tag(container, statement: str) -> None:
    """A paragraph holding one ``{%p … %}`` tag: docxtpl removes the paragraph itself."""
    container.add_paragraph(f"{{%p {statement} %}}")


def heading(document, text: str, level: int = 1, *, page_break_before: bool = False):
    paragraph = document.add_heading(french(text), level=level)
    if page_break_before:
        paragraph.paragraph_format.page_break_before = True
    return paragraph


def _fill(cell, content: str | Sequence[str], *, bold: bool = False, size: float = 9,
          keep: bool = False) -> None:
    """Cell text; a list gives a first line and smaller italic lines. ``keep``: keep the row
    on the same page as the next one."""
    texts = [content] if isinstance(content, str) else list(content)
    first = cell.paragraphs[0]
    for index, text in enumerate(texts):
        paragraph = first if index == 0 else cell.add_paragraph()
        run = paragraph.add_run(french(text))
        run.font.size = Pt(size if index == 0 else size - 1)
        run.bold = bold or None
        if index:
            run.italic = True
        paragraph.paragraph_format.space_after = Pt(0)
        if keep:
            paragraph.paragraph_format.keep_with_next = True


def _widths(table, widths: Sequence[float]) -> None:
    """Column widths for Word (cell widths) and LibreOffice (the table grid)."""
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = Cm(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=False):
            cell.width = Cm(width)


def loop_table(container, headers: Sequence[str], cells: Cells, loop: str,
               widths: Sequence[float], *, row_height: float | None = None):
    """A table: a header row repeated on each page, then one row per item of ``loop``."""
    table = container.add_table(rows=4, cols=len(headers))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, label in zip(table.rows[0].cells, headers, strict=True):
        _fill(cell, label, bold=True, keep=True)
        _shade(cell, HEADER_FILL)
    _row_flag(table.rows[0], "w:tblHeader")
    table.rows[1].cells[0].text = f"{{%tr for {loop} %}}"
    for cell, content in zip(table.rows[2].cells, cells, strict=True):
        _fill(cell, content)
    _row_flag(table.rows[2], "w:cantSplit")
    if row_height:
        table.rows[2].height = Cm(row_height)
        table.rows[2].height_rule = WD_ROW_HEIGHT_RULE.AT_LEAST
    table.rows[3].cells[0].text = "{%tr endfor %}"
    _widths(table, widths)
    return table


def key_value_table(container, rows: Sequence[tuple[str, str]], widths=(5.0, 12.0)):
    """A two-column table of fixed labels and template values, kept on one page."""
    table = container.add_table(rows=len(rows), cols=2)
    table.style = "Table Grid"
    for index, (row, (label, value)) in enumerate(zip(table.rows, rows, strict=True)):
        keep = index < len(rows) - 1
        _fill(row.cells[0], label, bold=True, keep=keep)
        _shade(row.cells[0], HEADER_FILL)
        _fill(row.cells[1], value, keep=keep)
        _row_flag(row, "w:cantSplit")
    _widths(table, widths)
    return table


def when(container, condition: str, build: Callable[[], None], otherwise: str) -> None:
    """``build()`` when ``condition`` holds, else the sentence ``otherwise``."""
    tag(container, f"if {condition}")
    build()
    tag(container, "else")
    para(container, otherwise, italic=True)
    tag(container, "endif")


def _frame(document, title: str, *, landscape: bool = False,
           about: str = "séance du {{ meeting_date }}", notice: str = CONFIDENTIAL) -> float:
    """A4 page, logos and confidentiality mention in the header, date, version and page x / y
    in the footer. Returns the usable width in cm."""
    section = document.sections[0]
    long_side, short_side = Cm(29.7), Cm(21.0)
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = long_side, short_side
    else:
        section.page_width, section.page_height = short_side, long_side
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(2))
    section.top_margin, section.bottom_margin = Cm(1.6), Cm(1.6)
    section.header_distance = section.footer_distance = Cm(0.8)
    usable = (29.7 if landscape else 21.0) - 4.0

    header = section.header
    logos = header.add_table(rows=1, cols=3, width=Cm(usable))
    left, middle, right = logos.rows[0].cells
    left.paragraphs[0].add_run().add_picture(str(LOGO_DEPARTEMENT), height=Cm(1.2))
    right.paragraphs[0].add_run().add_picture(str(LOGO_FRANCE_TRAVAIL), height=Cm(1.2))
    right.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    _fill(middle, "Instance de Concertation Locale Insertion (ICL-I / ICAG)", bold=True,
          size=8.5)
    middle.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    sub = middle.add_paragraph()
    sub.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = sub.add_run("Département de la Seine-Saint-Denis · France Travail")
    run.font.size = Pt(8)
    _widths(logos, (3.6, usable - 7.2, 3.6))
    notice_paragraph = header.paragraphs[0]  # the header's own paragraph, below the logos
    notice_paragraph._p.addprevious(logos._tbl)
    notice_paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    # Room below the header: a table continued on the next page does not touch it.
    notice_paragraph.paragraph_format.space_after = Pt(10)
    run = notice_paragraph.add_run(french(notice))
    run.font.size = Pt(8)
    run.bold = True
    run.font.color.rgb = RED

    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = footer.add_run(french(f"{title} – {about} – version "
                         f"{{{{ version }}}} du {{{{ generated_on }}}} – page "))
    run.font.size = Pt(8)
    _field(footer, "PAGE")
    footer.add_run(" / ").font.size = Pt(8)
    _field(footer, "NUMPAGES")

    # French for Word's spelling, grammar and hyphenation (python-docx's default is en-US).
    language = document.styles.element.find(qn("w:docDefaults")).find(
        qn("w:rPrDefault")).find(qn("w:rPr")).find(qn("w:lang"))
    language.set(qn("w:val"), "fr-FR")
    document.core_properties.language = "fr-FR"
    _calibri_everywhere(document)
    normal = document.styles["Normal"]
    normal.font.size = Pt(10)
    normal.paragraph_format.space_after = Pt(4)
    return usable


def _calibri_everywhere(document) -> None:
    """Calibri in every style, the defaults and the list bullets, theme fonts dropped
    (python-docx's headings use the theme's Cambria, its bullets the Symbol font):
    LibreOffice substitutes Carlito, metric-compatible, so the PDF paginates as the Word file
    does."""
    numbering = document.part.numbering_part.element
    for text in numbering.iter(qn("w:lvlText")):  # Symbol's private-use bullet
        if text.get(qn("w:val")) == "\uf0b7":
            text.set(qn("w:val"), "•")
    for fonts in [*document.styles.element.iter(qn("w:rFonts")),
                  *numbering.iter(qn("w:rFonts"))]:
        for attribute in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
            fonts.attrib.pop(qn(attribute), None)
        for attribute in ("w:ascii", "w:hAnsi", "w:cs"):
            fonts.set(qn(attribute), FONT)


def _new(title: str, *, landscape: bool = False, **frame) -> tuple[Document, float]:
    document = Document()
    usable = _frame(document, title, landscape=landscape, **frame)
    document.core_properties.title = title
    document.core_properties.author = "ICL-I Seine-Saint-Denis"
    document.core_properties.comments = ""
    return document, usable


def _session_lines(document) -> None:
    para(document, "Instance de Concertation Locale Insertion (ICL-I / ICAG) – circonscription "
                   "de {{ circonscription }}", bold=True)
    para(document, "Séance du {{ meeting_date }} à {{ meeting_time }}")
    para(document, "Lieu : {{ place }}")


# -- ordre du jour ------------------------------------------------------------------------------
def _situation_table(document, loop_var: str, usable: float, *, icag: bool) -> None:
    nature = ["{{ s.icag_kind }}"] if icag else []
    headers = ["N°", "Horaire", "Situation (référence – pseudonyme)", "Structure présentatrice",
               *(["Nature"] if icag else []), "Motif de saisine", "Passage"]
    cells = ["{{ s.number }}", "{{ s.time_slot }}",
             ["{{ s.label }}",
              "{{ s.urgent }}{% if s.urgent and s.late %} · {% endif %}{{ s.late }}"],
             ["{{ s.structure }}", "{{ s.structure_type }}"], *nature, "{{ s.motif }}",
             "{{ s.passage }}"]
    fixed = 1.0 + 1.9 + (2.2 if icag else 0)
    rest = usable - fixed
    widths = [1.0, 1.9, rest * 0.28, rest * 0.26, *([2.2] if icag else []), rest * 0.26,
              rest * 0.20]
    loop_table(document, headers, cells, f"s in {loop_var}", widths)


def agenda_body(document, usable: float) -> None:
    """The ordre du jour, shared by the agenda and the dossier de séance."""
    _session_lines(document)
    tag(document, "if video_link")
    para(document, "Visioconférence : {{ video_link }}")
    tag(document, "endif")
    para(document, "Animation : {{ facilitators }}{% if not facilitators %}chargé·e "
                   "d'animation territoriale{% endif %} – co-pilotage DIEESS / France Travail")

    heading(document, "1. Partenariat, interconnaissance, projets territoriaux", 2)
    when(document, "partnership",
         lambda: loop_table(document, ["Horaire", "Point", "Présenté par", "Durée"],
                            ["{{ p.time_slot }}", "{{ p.title }}", "{{ p.presenter }}",
                             "{{ p.duration }}"],
                            "p in partnership", [1.9, (usable - 3.9) * 0.55,
                                                 (usable - 3.9) * 0.45, 2.0]),
         "Aucun point de partenariat n'est inscrit.")

    heading(document, "2. Études de situations", 2)
    when(document, "situations",
         lambda: _situation_table(document, "situations", usable, icag=False),
         "Aucune situation n'est inscrite.")
    para(document, "Chaque référent·e n'assiste qu'à la présentation de la situation qu'il ou "
                   "elle présente, sur le créneau indiqué. Les situations sont désignées par leur "
                   "référence et leur pseudonyme.", italic=True, size=8.5, before=4)

    heading(document, "3. ICAG : entrées, renouvellements, sorties", 2)
    when(document, "icag", lambda: _situation_table(document, "icag", usable, icag=True),
         "Aucune entrée, aucun renouvellement ni aucune sortie d'accompagnement global.")

    heading(document, "4. Suivi des préconisations et questions diverses", 2)
    para(document, "Vers {{ followups_time }} – présenté par : {{ followups_presenter }}",
         italic=True, keep_with_next=True)
    when(document, "followups",
         lambda: (para(document, "Préconisations des séances précédentes restant à réaliser "
                                 "(situations désignées par leur seule référence) :"),
                  loop_table(document, ["Référence", "Séance", "Porteur", "Échéance", "État"],
                             ["{{ f.reference }}", "{{ f.session_date }}", "{{ f.porteur }}",
                              "{{ f.echeance }}", "{{ f.state }}"], "f in followups",
                             [3.6, 2.4, usable - 12.4, 2.4, 4.0])),
         "Aucune préconisation des séances précédentes n'est en attente.")
    para(document, "Questions diverses.", before=6)

    heading(document, "Membres invités", 2)
    when(document, "members",
         lambda: loop_table(document, ["Nom", "Structure", "Fonction", "Statut"],
                            ["{{ m.name }}", "{{ m.structure }}", "{{ m.function }}",
                             "{{ m.status }}"], "m in members",
                            [usable * 0.25, usable * 0.32, usable * 0.25, usable * 0.18]),
         "Aucun membre n'est encore invité.")


def build_agenda(path: Path) -> None:
    document, usable = _new("Ordre du jour")
    heading(document, "Ordre du jour", 0)
    agenda_body(document, usable)
    document.save(path)


# -- dossier de séance --------------------------------------------------------------------------
LABEL_WIDTH = 5.0  # cm: where a field line's value starts
LABEL_CHARACTERS = 28  # the longest label that fits before it (bold, 9 pt)


def field_line(container, label: str, value: str) -> None:
    """« Label  value » on one paragraph, the value aligned on a tab stop with a hanging
    indent: reads like a two-column table, at a fraction of a table's layout cost (the
    dossier has dozens per situation; LibreOffice lays out a table cell ~3× slower).

    A label too long for its column ends with a line break instead of the tab, so that the
    value starts on the next line at the same indent as the others (a tab after it would
    push the value to the next default tab stop). A label from the data (``{{ x.label }}``)
    is measured when rendered, with run-level tags."""
    paragraph = container.add_paragraph()
    fmt = paragraph.paragraph_format
    fmt.left_indent = Cm(LABEL_WIDTH)
    fmt.first_line_indent = Cm(-LABEL_WIDTH)
    fmt.tab_stops.add_tab_stop(Cm(LABEL_WIDTH))
    fmt.space_after = Pt(2)
    label_run = paragraph.add_run(french(label))
    label_run.bold = True
    label_run.font.size = Pt(9)
    variable = re.fullmatch(r"{{ ([\w.]+) }}", label)
    if variable:
        paragraph.add_run(f"{{%r if {variable[1]}|length > {LABEL_CHARACTERS} %}}")
        paragraph.add_run().add_break()
        paragraph.add_run("{%r else %}")
        paragraph.add_run().add_tab()
        paragraph.add_run("{%r endif %}")
    elif len(label) > LABEL_CHARACTERS:
        paragraph.add_run().add_break()
    else:
        paragraph.add_run().add_tab()
    paragraph.add_run(french(value)).font.size = Pt(9)


def field_loop(container, loop: str, label: str, value: str) -> None:
    """One field line per item of ``loop`` (a paragraph loop, no table)."""
    tag(container, f"for {loop}")
    field_line(container, label, value)
    tag(container, "endfor")


def _fiche(document, usable: float) -> None:
    """One pseudonymised situation sheet (inside ``{%p for s in sheets %}``). Fields are
    paragraphs; only the naturally tabular parts (actions, passages) are tables."""
    heading(document, "Situation n° {{ s.number }} – {{ s.reference }} – {{ s.pseudonym }}", 1,
            page_break_before=True)
    para(document, "{{ s.part }} – créneau de {{ s.time_slot }}", italic=True)
    for label, value in (
        ("Référence", "{{ s.reference }}"),
        ("Pseudonyme", "{{ s.pseudonym }}"),
        ("Structure référente", "{{ s.structure }}{% if s.structure_type %} – "
                                "{{ s.structure_type }}{% endif %}"),
        ("Motif principal", "{{ s.motif }}"),
        ("Motifs secondaires", "{{ s.secondary_motifs }}{% if not s.secondary_motifs %}—"
                               "{% endif %}"),
        ("Situation urgente", "{{ s.urgent }}"),
    ):
        field_line(document, label, value)

    heading(document, "Situation de la personne", 2)
    field_loop(document, "f in s.fields", "{{ f.label }}", "{{ f.value }}")
    para(document, "Parcours et situation (résumé)", bold=True, keep_with_next=True, before=6)
    para(document, "{{ s.parcours }}")

    heading(document, "Freins", 2)
    when(document, "s.freins",
         lambda: field_loop(document, "b in s.freins", "{{ b.label }}", "{{ b.intensity }}"),
         "Aucun frein renseigné.")
    tag(document, "if s.sensitive_shared")
    para(document, "Précisions sensibles partagées par le ou la référent·e (à ne pas reporter "
                   "au procès-verbal) :", bold=True, keep_with_next=True, before=6)
    when(document, "s.sensitive",
         lambda: field_loop(document, "d in s.sensitive", "{{ d.label }}", "{{ d.value }}"),
         "Aucune précision renseignée.")
    tag(document, "else")
    para(document, "Précisions sensibles non partagées : seules les catégories de freins "
                   "figurent au dossier.", italic=True, size=8.5, before=4)
    tag(document, "endif")

    heading(document, "Actions engagées", 2)
    when(document, "s.actions",
         lambda: loop_table(document, ["Action", "Structure", "Début", "Fin", "Résultat"],
                            ["{{ a.action }}", "{{ a.structure }}", "{{ a.start }}",
                             "{{ a.end }}", "{{ a.result }}"], "a in s.actions",
                            [usable - 11.8, 3.8, 2.4, 2.4, 3.2]),
         "Aucune action renseignée.")

    heading(document, "Question posée à l'instance", 2)
    para(document, "{{ s.question }}")
    heading(document, "Proposition du ou de la référent·e", 2)
    para(document, "{{ s.proposition }}{% if not s.proposition %}—{% endif %}")
    heading(document, "Information et position de la personne", 2)
    field_line(document, "Personne informée", "{{ s.person_informed }}")
    field_line(document, "Position de la personne", "{{ s.person_position }}")
    field_line(document, "Observations de la personne", "{{ s.person_comment }}")

    heading(document, "Passages précédents", 2)
    when(document, "s.passages",
         lambda: loop_table(document, ["Date", "Référence", "Motif", "Avis"],
                            ["{{ h.date }}", "{{ h.reference }}", "{{ h.motif }}",
                             "{{ h.avis }}"], "h in s.passages",
                            [2.4, 3.6, (usable - 6.0) / 2, (usable - 6.0) / 2]),
         "Premier passage en instance.")


def followups_table(document, loop_var: str, usable: float) -> None:
    """Open préconisations of earlier sessions, with their text (dossier annex, minutes): the
    columns fit a reference, a date and « Préconisation » unbroken, the text takes the rest."""
    loop_table(document, ["Référence", "Séance", "Préconisation", "Porteur", "Échéance",
                          "État"],
               ["{{ r.reference }}", "{{ r.session_date }}", "{{ r.preconisation }}",
                "{{ r.porteur }}", "{{ r.echeance }}", "{{ r.state }}"],
               f"r in {loop_var}", [3.2, 2.0, usable - 13.0, 3.2, 2.0, 2.6])


def build_dossier(path: Path) -> None:
    document, usable = _new("Dossier de séance")
    heading(document, "Dossier de séance", 0)
    _session_lines(document)
    para(document, "Version {{ version }} du {{ generated_on }}")
    box = document.add_table(rows=1, cols=1)
    box.style = "Table Grid"
    cell = box.rows[0].cells[0]
    _shade(cell, "FBE9E9")
    _fill(cell, "DOCUMENT CONFIDENTIEL – SECRET PROFESSIONNEL", bold=True, size=11)
    for text in (
        "Toute personne participant à l'instance est tenue au secret professionnel "
        "(art. L.262-44 du code de l'action sociale et des familles ; art. 226-13 du code pénal).",
        "Les situations sont présentées sous pseudonyme : n'y ajoutez aucune information "
        "permettant d'identifier une personne.",
        "Ce dossier est réservé aux destinataires ci-dessous. Ne pas copier, ne pas diffuser. "
        "À détruire après la séance.",
    ):
        para(cell, text, size=9.5)
    _widths(box, [usable])
    para(document, "")
    para(document, "Exemplaire n° ______ sur {{ copies|length }}", bold=True)
    heading(document, "Liste de diffusion", 2)
    when(document, "copies",
         lambda: loop_table(document, ["N°", "Destinataire", "Structure", "Fonction", "Statut"],
                            ["{{ c.number }}", "{{ c.name }}", "{{ c.structure }}",
                             "{{ c.function }}", "{{ c.status }}"], "c in copies",
                            [1.0, (usable - 4.2) * 0.3, (usable - 4.2) * 0.4,
                             (usable - 4.2) * 0.3, 3.2]),
         "Aucun destinataire : invitez les membres de l'instance avant d'imprimer.")

    heading(document, "Ordre du jour", 1, page_break_before=True)
    agenda_body(document, usable)

    tag(document, "for s in sheets")
    _fiche(document, usable)
    tag(document, "endfor")

    heading(document, "Annexe – suivi des préconisations en cours", 1, page_break_before=True)
    when(document, "open_recommendations",
         lambda: followups_table(document, "open_recommendations", usable),
         "Aucune préconisation n'est en cours.")
    para(document, "Les préconisations sont désignées par la seule référence de la situation.",
         italic=True, size=8.5, before=4)
    document.save(path)


# -- feuille d'émargement -----------------------------------------------------------------------
COMMITMENT = (
    "En signant cette feuille, chaque participant·e reconnaît être tenu·e au secret "
    "professionnel (art. L.262-44 du code de l'action sociale et des familles ; art. 226-13 "
    "du code pénal) et s'engage à ne divulguer aucune information relative aux situations "
    "examinées, à n'en faire usage que pour l'accompagnement des personnes concernées, à "
    "limiter le partage d'informations à ce qui est strictement nécessaire (art. L.121-6-2 "
    "CASF), à ne conserver ni copier aucun document de séance et à détruire le dossier de "
    "séance à l'issue de la réunion. Les référent·e·s présentant une situation n'assistent "
    "qu'à l'examen de celle-ci."
)


def build_attendance(path: Path) -> None:
    document, usable = _new("Feuille d'émargement", landscape=True)
    heading(document, "Feuille d'émargement", 0)
    _session_lines(document)
    para(document, "Animation : {{ facilitators }}")
    heading(document, "Engagement de confidentialité", 2)
    para(document, COMMITMENT, size=9.5)

    heading(document, "Membres invités", 2)
    para(document, "Présent·e, excusé·e, absent·e : cochés à l'entrée en séance ; renseignés "
                   "d'après les présences enregistrées quand la feuille est produite après la "
                   "séance.", italic=True, size=8.5)
    when(document, "members",
         lambda: loop_table(document, ["Nom", "Structure", "Fonction", "Statut", "Réponse",
                                       "Présent·e", "Excusé·e", "Absent·e", "Signature"],
                            ["{{ m.name }}", "{{ m.structure }}", "{{ m.function }}",
                             "{{ m.status }}", "{{ m.answer }}", "{{ m.present }}",
                             "{{ m.excused }}", "{{ m.absent }}", ""], "m in members",
                            [3.8, 4.0, 3.6, 2.6, 2.8, 1.8, 1.9, 1.8, usable - 22.3],
                            row_height=1.2),
         "Aucun membre n'est invité.")

    heading(document, "Référent·e·s présentant une situation", 2)
    when(document, "presenters",
         lambda: loop_table(document, ["Structure", "Qualité", "Créneau",
                                       "Nom et fonction", "Signature"],
                            ["{{ r.structure }}", "{{ r.label }}", "{{ r.time_slots }}", "",
                             ""], "r in presenters",
                            [5.0, 5.6, 2.6, 5.0, usable - 18.2], row_height=1.2),
         "Aucune situation n'est inscrite.")

    heading(document, "Autres participant·e·s", 2)
    table = document.add_table(rows=4, cols=5)
    table.style = "Table Grid"
    for cell, label in zip(table.rows[0].cells, ["Nom", "Structure", "Fonction",
                                                 "Qualité (remplaçant·e de…)", "Signature"],
                           strict=True):
        _fill(cell, label, bold=True, keep=True)
        _shade(cell, HEADER_FILL)
    for row in table.rows[1:]:
        row.height = Cm(1.2)
        row.height_rule = WD_ROW_HEIGHT_RULE.AT_LEAST
        _row_flag(row, "w:cantSplit")
    _widths(table, [4.2, 5.0, 4.2, 5.0, usable - 18.4])
    para(document, "")
    para(document, "Les situations sont désignées par leur seul numéro d'ordre du jour : aucun "
                   "nom de personne accompagnée ne figure sur cette feuille.", italic=True,
         size=8.5)
    document.save(path)


# -- procès-verbal ------------------------------------------------------------------------------
def _outcome_block(document, usable: float, loop_var: str, *, icag: bool) -> None:
    tag(document, f"for s in {loop_var}")
    title = "{{ s.icag_kind }} – situation {{ s.reference }}" if icag else \
        "Situation {{ s.reference }}"
    heading(document, title, 3)
    key_value_table(document, [
        ("Motif de saisine", "{{ s.motif }}"),
        ("Structure présentatrice", ["{{ s.structure }}", "{{ s.structure_type }}"]),
        ("Issue", "{{ s.outcome }}"),
    ], widths=(5.0, usable - 5.0))
    tag(document, "if s.adjourned")
    para(document, "Motif de l'ajournement : {{ s.adjourn_reason }}", before=6)
    tag(document, "elif s.decided")
    key_value_table(document, [
        ("Avis de l'instance", "{{ s.avis }}"),
        ("Motivation", "{{ s.motivation }}"),
        ("Date de retour en instance", "{{ s.come_back_on }}{% if not s.come_back_on %}—"
                                       "{% endif %}"),
        ("Décision formelle requise", "{{ s.formal_decision }}"),
    ], widths=(5.0, usable - 5.0))
    tag(document, "if s.actions")
    para(document, "Préconisations :", bold=True, keep_with_next=True, before=6)
    loop_table(document, ["Action", "Porteur", "Échéance"],
               ["{{ a.label }}", "{{ a.porteur }}", "{{ a.echeance }}"], "a in s.actions",
               [usable - 7.4, 5.0, 2.4])
    tag(document, "endif")
    tag(document, "else")
    para(document, "Situation non examinée.", italic=True)
    tag(document, "endif")
    tag(document, "endfor")


def build_minutes(path: Path) -> None:
    document, usable = _new("Procès-verbal")
    heading(document, "Procès-verbal – relevé de décisions", 0)
    key_value_table(document, [
        ("Instance", "ICL-I / ICAG – circonscription de {{ circonscription }}"),
        ("Date", "{{ meeting_date }} à {{ meeting_time }}"),
        ("Lieu", "{{ place }}"),
        ("Animation", "{{ facilitators }}"),
        ("Secrétaire de séance", "{{ secretary }}{% if not secretary %}" + "_" * 30
                                 + "{% endif %}"),
    ], widths=(5.0, usable - 5.0))
    para(document, "Les situations sont désignées par leur seule référence pseudonyme : ce "
                   "procès-verbal ne contient ni donnée identifiante ni détail sensible.",
         italic=True, size=8.5, before=4)

    heading(document, "1. Participant·e·s", 2)
    para(document, "Présent·e·s : {{ attendance_totals.present }} – excusé·e·s : "
                   "{{ attendance_totals.excuse }} – absent·e·s : {{ attendance_totals.absent }}"
                   " – remplacé·e·s : {{ attendance_totals.remplace }}", bold=True)
    tag(document, "if attendance")
    table = document.add_table(rows=7, cols=4)
    table.style = "Table Grid"
    _widths(table, [usable * 0.3, usable * 0.3, usable * 0.18, usable * 0.22])
    for cell, label in zip(table.rows[0].cells, ["Nom", "Fonction", "Statut", "Présence"],
                           strict=True):
        _fill(cell, label, bold=True)
        _shade(cell, HEADER_FILL)
    _row_flag(table.rows[0], "w:tblHeader")
    table.rows[1].cells[0].text = "{%tr for g in attendance %}"
    group = table.rows[2].cells
    _fill(group[0], "{{ g.structure }}", bold=True)
    merged = group[1].merge(group[3])
    _fill(merged, "présent·e·s {{ g.present }} · excusé·e·s {{ g.excuse }} · absent·e·s "
                  "{{ g.absent }} · remplacé·e·s {{ g.remplace }}")
    _shade(group[0], "F2F2F2")
    _shade(merged, "F2F2F2")
    table.rows[3].cells[0].text = "{%tr for m in g.members %}"
    for cell, text in zip(table.rows[4].cells, ["{{ m.name }}", "{{ m.function }}",
                                                "{{ m.status }}", "{{ m.attendance }}"],
                          strict=True):
        _fill(cell, text)
    table.rows[5].cells[0].text = "{%tr endfor %}"
    table.rows[6].cells[0].text = "{%tr endfor %}"
    tag(document, "else")
    para(document, "Aucun membre n'était invité.", italic=True)
    tag(document, "endif")

    heading(document, "2. Situations examinées", 2)
    para(document, "Situations examinées : {{ situations_examined }} – ajournées : "
                   "{{ situations_adjourned }}.", bold=True)
    tag(document, "if motif_counts")
    loop_table(document, ["Motif de saisine", "Examinées", "Ajournées"],
               ["{{ c.motif }}", "{{ c.examined }}", "{{ c.adjourned }}"], "c in motif_counts",
               [usable - 5.0, 2.5, 2.5])
    tag(document, "endif")

    heading(document, "3. Points de partenariat", 2)
    tag(document, "for p in partnership")
    heading(document, "{{ p.title }}", 3)
    key_value_table(document, [
        ("Présenté par", "{{ p.presenter }}"),
        ("Horaire et durée", "{{ p.time_slot }}{% if p.time_slot %} – {% endif %}"
                             "{{ p.duration }}"),
        ("Synthèse", "{{ p.summary }}{% if not p.summary %}—{% endif %}"),
        ("Décision ou suite à donner", "{{ p.next_step }}{% if not p.next_step %}—{% endif %}"),
        ("Date de suivi", "{{ p.follow_up_on }}{% if not p.follow_up_on %}—{% endif %}"),
    ], widths=(5.0, usable - 5.0))
    tag(document, "endfor")
    tag(document, "if not partnership")
    para(document, "Aucun point de partenariat.", italic=True)
    tag(document, "endif")

    heading(document, "4. Avis par situation", 2)
    _outcome_block(document, usable, "situations", icag=False)
    tag(document, "if not situations")
    para(document, "Aucune situation n'était inscrite.", italic=True)
    tag(document, "endif")

    heading(document, "5. ICAG : entrées, renouvellements, sorties", 2)
    _outcome_block(document, usable, "icag", icag=True)
    tag(document, "if not icag")
    para(document, "Aucune entrée, aucun renouvellement ni aucune sortie d'accompagnement "
                   "global.", italic=True)
    tag(document, "endif")
    tag(document, "if icag_steps")
    para(document, "Accompagnements globaux enregistrés à cette séance :", bold=True,
         keep_with_next=True, before=6)
    loop_table(document, ["Situation", "Étape", "Date", "Terme", "Diagnostic partagé",
                          "Motif de sortie"],
               ["{{ g.reference }}", "{{ g.kind }}", "{{ g.date }}", "{{ g.term }}",
                "{{ g.diagnostic }}", "{{ g.exit_reason }}"], "g in icag_steps",
               [3.4, 3.0, 2.0, 2.0, usable - 14.4, 4.0])
    tag(document, "endif")

    heading(document, "6. Suivi des préconisations des séances précédentes", 2)
    when(document, "followups", lambda: followups_table(document, "followups", usable),
         "Aucune préconisation d'une séance précédente n'était en cours.")
    _signatures(document, usable)
    document.save(path)


def _signatures(document, usable: float) -> None:
    """The closing sentence, « Fait à », the approved version and both signature blocks, side
    by side in one row that cannot split: all kept on one page (keep with next), so that a
    signature never stands alone on a page."""
    heading(document, "7. Signatures", 2).paragraph_format.keep_with_next = True
    para(document, "Le présent procès-verbal, qui désigne les situations par leur seule "
                   "référence, est soumis au visa des deux directions signataires.",
         keep_with_next=True)
    para(document, "Fait à {{ done_at }}, le {{ done_on }}.", keep_with_next=True, before=4)
    tag(document, "if approved.sha256")
    para(document, "Version approuvée par les deux directions\u00a0: fichier "
                   "{{ approved.filename }} (version {{ approved.number }}), empreinte "
                   "SHA-256\u00a0: {{ approved.sha256 }}. Elle est téléchargeable depuis la "
                   "page des visas et figure dans l'archive de la séance.", size=8.5,
         keep_with_next=True)
    tag(document, "endif")
    table = document.add_table(rows=1, cols=2)
    for cell, index in zip(table.rows[0].cells, (0, 1), strict=True):
        v = f"visas[{index}]"
        _fill(cell, f"{{{{ {v}.institution_label }}}}", bold=True, size=10)
        for line in (f"{{%p if {v}.sha256 %}}",
                     f"Visa apposé par {{{{ {v}.name }}}} le {{{{ {v}.date }}}}.",
                     "{%p else %}", f"Nom et qualité\u00a0: {'_' * 24}",
                     f"Date\u00a0: {'_' * 30}", "Signature\u00a0:", "", "", "",
                     "{%p endif %}"):
            paragraph = cell.add_paragraph(french(line))
            paragraph.paragraph_format.keep_together = True
    _row_flag(table.rows[0], "w:cantSplit")
    _widths(table, [usable / 2, usable / 2])


# -- fiche retour -------------------------------------------------------------------------------
def build_feedback(path: Path) -> None:
    document, usable = _new("Fiche retour")
    heading(document, "Fiche retour au ou à la référent·e", 0)
    para(document, "ICL-I / ICAG – circonscription de {{ circonscription }} – séance du "
                   "{{ meeting_date }}", bold=True)
    key_value_table(document, [
        ("Référence", "{{ reference }}"),
        ("Pseudonyme", "{{ pseudonym }}"),
        ("Structure référente", "{{ structure }}"),
        ("Motif de saisine", "{{ motif }}"),
        ("Date de la séance", "{{ meeting_date }}"),
    ], widths=(5.0, usable - 5.0))
    para(document, "L'identité de la personne ne figure pas sur ce document : elle est affichée "
                   "dans votre espace, à côté du téléchargement.", italic=True, size=8.5, before=4)

    heading(document, "Avis de l'instance", 2)
    key_value_table(document, [
        ("Avis", "{{ avis }}"),
        ("{% if adjourned %}Motif de l'ajournement{% else %}Motivation{% endif %}",
         "{{ motivation }}{% if not motivation %}—{% endif %}"),
        ("Décision formelle", "{{ formal_decision }}{% if not formal_decision %}—{% endif %}"),
        ("Prochain passage en instance", "{{ next_passage }}{% if not next_passage %}Aucun "
                                         "prévu{% endif %}"),
    ], widths=(5.0, usable - 5.0))

    heading(document, "Préconisations", 2)
    when(document, "actions",
         lambda: loop_table(document, ["Action", "Porteur", "Échéance"],
                            ["{{ a.label }}", "{{ a.porteur }}", "{{ a.echeance }}"],
                            "a in actions", [usable - 7.4, 5.0, 2.4]),
         "Aucune préconisation.")

    heading(document, "Information à donner à la personne", 2)
    tag(document, "for line in information")
    para(document, "{{ line }}", style="List Bullet")
    tag(document, "endfor")

    heading(document, "Contact", 2)
    para(document, "{{ contact }}")
    document.save(path)


# -- note d'information de la personne ---------------------------------------------------------
INFORMATION_SECTIONS = (
    ("Qu'est-ce que l'ICL-I ?",
     ["L'instance de concertation locale insertion (ICL-I) de la circonscription de "
      "{{ circonscription }} réunit, chaque mois, des professionnels du Département de la "
      "Seine-Saint-Denis, de France Travail et de leurs partenaires de l'insertion. Elle "
      "étudie des situations de personnes bénéficiaires du RSA pour proposer des solutions "
      "adaptées à leur parcours. Elle donne un avis ; elle ne prend pas de sanction."]),
    ("Pourquoi votre situation est-elle examinée ?",
     ["Votre référent·e de parcours ({{ structure }}) souhaite l'avis de l'instance sur votre "
      "parcours d'insertion (motif : {{ motif }}). Vous pouvez lui faire part de vos "
      "observations : elles seront transmises à l'instance."]),
    ("Quelles informations sont utilisées ?",
     ["Votre situation est présentée sous une référence et un pseudonyme : votre nom, votre "
      "adresse et vos numéros n'apparaissent dans aucun document remis aux membres de "
      "l'instance. Sont utilisées les informations utiles à votre parcours (situation "
      "familiale et professionnelle, logement, freins rencontrés, actions engagées), limitées "
      "à ce qui est strictement nécessaire."]),
    ("Qui les voit ?",
     ["Votre référent·e et sa structure, la personne chargée de l'animation de l'instance et "
      "les membres de l'instance, tous tenus au secret professionnel (article L.262-44 du "
      "code de l'action sociale et des familles). Le traitement repose sur une mission "
      "d'intérêt public (accompagnement des bénéficiaires du RSA)."]),
    ("Combien de temps sont-elles conservées ?",
     ["{{ retention }}"]),
    ("Quels sont vos droits ?",
     ["Vous pouvez accéder aux informations qui vous concernent, les faire rectifier, "
      "demander la limitation de leur utilisation ou vous y opposer pour des raisons tenant "
      "à votre situation particulière. Pour exercer ces droits, adressez-vous à votre "
      "référent·e ou au délégué à la protection des données : {{ dpo_contact }}.",
      "Si vous estimez que vos droits ne sont pas respectés, vous pouvez adresser une "
      "réclamation à la CNIL (www.cnil.fr)."]),
)


# The easy-to-read version (FALC: short sentences, one idea per line, everyday words).
EASY_TO_READ = (
    "Votre référent·e demande l'avis d'un groupe de professionnels.",
    "Ce groupe s'appelle l'ICL-I.",
    "Il se réunit chaque mois, dans la circonscription de {{ circonscription }}.",
    "Il donne un avis sur votre parcours.",
    "Il ne vous sanctionne pas.",
    "Votre nom n'est pas écrit dans les documents du groupe.",
    "Le groupe voit seulement un numéro : {{ reference }}.",
    "Les professionnels du groupe gardent le secret.",
    "Vous pouvez dire ce que vous pensez à votre référent·e.",
    "Vous pouvez demander à voir vos informations.",
    "Vous pouvez demander de les corriger.",
    "Pour cela, parlez à votre référent·e.",
    "Ou écrivez à : {{ dpo_contact }}.",
)
# Given to the person: no « ne pas diffuser » stamp.
INFORMATION_NOTICE = "Information de la personne accompagnée – document à conserver"


def build_information(path: Path) -> None:
    document, usable = _new("Note d'information", about="fiche {{ reference }}",
                            notice=INFORMATION_NOTICE)
    heading(document, "Note d'information : examen de votre situation en instance de "
                         "concertation", 0)
    heading(document, "En bref, en facile à lire", 2)
    for line in EASY_TO_READ:
        para(document, line, size=13)
    heading(document, "La note complète", 2, page_break_before=True)
    key_value_table(document, [
        ("Référence de votre dossier", "{{ reference }}"),
        ("Structure qui vous accompagne", "{{ structure }}"),
        ("Instance", "ICL-I de la circonscription de {{ circonscription }}"),
    ], widths=(6.0, usable - 6.0))
    para(document, "Nom et prénom (à compléter par le ou la référent·e) : " + BLANK, before=6)
    for title, paragraphs in INFORMATION_SECTIONS:
        heading(document, title, 2)
        for text in paragraphs:
            para(document, text)
    heading(document, "Votre position", 2)
    # « □ » rather than « ☐ »: Carlito has it, the PDF keeps one font family.
    para(document, "□ Je suis d'accord pour que ma situation soit examinée.")
    para(document, "□ Je ne suis pas d'accord\u00a0; mes observations\u00a0: " + BLANK)
    para(document, "Fait le " + "_" * 12 + "     Signature : " + "_" * 24, before=8)
    para(document, "Note remise ou envoyée par votre référent·e. Référence à rappeler dans "
                   "toute demande : {{ reference }}.", italic=True, size=8.5, before=6)
    document.save(path)


TEMPLATES = {
    "ordre_du_jour.docx": build_agenda,
    "dossier_de_seance.docx": build_dossier,
    "feuille_emargement.docx": build_attendance,
    "proces_verbal.docx": build_minutes,
    "fiche_retour.docx": build_feedback,
    "note_information.docx": build_information,
}


def main(argv: Sequence[str]) -> None:
    write_placeholder_logos(force="--logos" in argv)
    for name, builder in TEMPLATES.items():
        builder(HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main(sys.argv[1:])
