"""The look of the generated documents, checked on their PDF (LibreOffice, poppler): the
minutes' signature blocks stay on one page with the closing text, whatever the number of
situations; no word is split in the tables; every font is Carlito (Calibri's metrics), so the
PDF paginates as the Word file does. One conversion per document, shared by the checks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from generator import pdf as pdf_module
from generator.contexts import sample_context
from generator.pdf import PdfConverter
from generator.render import TEMPLATES, render

pytestmark = [pytest.mark.pdf, pytest.mark.slow]

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates_docx"
SITUATION_COUNTS = (1, 15, 40)
SIGNATURE_LABELS = ("Pour le Département", "Pour France Travail")
CLOSING = "Le présent procès-verbal, qui désigne les situations"
# Words of the sample's table cells that a too narrow column would split.
TABLE_WORDS = ("Renouvellement", "Préconisation", "compétences", "Échéance")


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def converter():
    soffice = pdf_module.find_soffice()
    if soffice is None or pdf_module.find_uno_python(soffice) is None:
        _missing("LibreOffice with python3-uno is not installed (.ci/run installs them)")
    if shutil.which("pdftotext") is None or shutil.which("pdffonts") is None:
        _missing("poppler-utils is not installed (.ci/run installs it)")
    with PdfConverter() as converter:
        assert converter.start()
        yield converter


def minutes_with(count: int) -> dict:
    """The sample minutes with ``count`` situations examined."""
    context = sample_context("minutes")
    model = context["situations"][0]
    context["situations"] = [model | {"reference": f"ICL-C01-2026-{n:04d}"}
                             for n in range(1, count + 1)]
    return context


@pytest.fixture(scope="module")
def pdfs(converter) -> dict[str, bytes]:
    """One PDF per kind (its sample), and the minutes at each count of situations."""
    built = {kind: converter.convert(render(TEMPLATES_DIR / name, sample_context(kind)))
             for kind, name in TEMPLATES.items() if kind != "minutes"}
    for count in SITUATION_COUNTS:
        built[f"minutes-{count}"] = converter.convert(
            render(TEMPLATES_DIR / TEMPLATES["minutes"], minutes_with(count)))
    return built


def pages(pdf: bytes) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", "-", "-"], input=pdf,
                          capture_output=True, check=True, timeout=60).stdout.decode()
    return [page for page in text.split("\f") if page.strip()]


@pytest.mark.parametrize("count", SITUATION_COUNTS)
def test_the_signature_blocks_share_one_page_with_the_closing_text(pdfs, count):
    texts = pages(pdfs[f"minutes-{count}"])
    signed = [n for n, text in enumerate(texts)
              if any(label in text for label in SIGNATURE_LABELS)]
    assert len(signed) == 1, f"signature blocks on pages {signed}"
    page = texts[signed[0]]
    assert all(label in page for label in SIGNATURE_LABELS)
    assert CLOSING in page and "Fait à Saint-Denis, le dimanche 20 décembre 2026." in page
    assert "Visa apposé par Claude Directeur" in page and "Nom et qualité" in page
    # The text goes on to the signatures: no page after them.
    assert signed[0] == len(texts) - 1


@pytest.mark.parametrize("kind", [*(k for k in TEMPLATES if k != "minutes"), "minutes-40"])
def test_no_word_is_split_in_the_tables_and_every_font_is_carlito(pdfs, kind):
    text = "\n".join(pages(pdfs[kind]))
    flat = re.sub(r"\s+", " ", text)
    for word in TABLE_WORDS:
        # A word of a cell, when the document has it, is never cut by a line end.
        stem = word[: len(word) - 2]
        if stem in flat:
            assert word in flat, f"{word!r} split in {kind}"
    fonts = subprocess.run(["pdffonts", "-"], input=pdfs[kind], capture_output=True,
                           check=True, timeout=60).stdout.decode().splitlines()[2:]
    names = {line.split()[0].split("+")[-1] for line in fonts if line.strip()}
    assert names and all(name.startswith("Carlito") for name in names), (kind, names)


# First words of the sample dossier's field values: after short labels (« Ancienneté au
# RSA »), after a long one (« Santé / handicap : précisions utiles au parcours ») and a
# long frein (« Mobilité (permis, transport, périmètre) »).
FIELD_VALUES = ("Plus", "Important", "Problématique", "Oui,", "Souhaite")


def test_the_dossiers_values_line_up_even_behind_a_long_label(pdfs):
    boxes = subprocess.run(["pdftotext", "-bbox", "-", "-"], input=pdfs["dossier"],
                           capture_output=True, check=True, timeout=60).stdout.decode()
    starts = {word: {round(float(x), 1) for x in re.findall(
        rf'<word xMin="([\d.]+)"[^>]*>{re.escape(word)}</word>', boxes)}
        for word in FIELD_VALUES}
    assert all(starts.values()), starts
    assert len(set().union(*starts.values())) == 1, starts
