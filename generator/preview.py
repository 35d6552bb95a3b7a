"""python -m generator.preview DIR: every document kind filled with its fictitious sample
(``generator.contexts.samples``), as Word, PDF and one PNG per page, in DIR: the pages CI
keeps as artefacts, to look at what the templates produce. Needs LibreOffice and poppler's
pdftoppm; no database, no keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from generator.contexts import sample_context
from generator.pdf import PdfConverter
from generator.render import TEMPLATES, render
from shared.config import REPO_ROOT

RESOLUTION = 60  # dots per inch: a page is about 500 × 700 pixels, readable and small


def write_previews(out: Path, templates_dir: Path = REPO_ROOT / "templates_docx") -> list[Path]:
    """The Word file, the PDF and the PNG pages of each kind's sample; returns the PNGs."""
    out.mkdir(parents=True, exist_ok=True)
    pages: list[Path] = []
    with PdfConverter() as converter:
        for kind, name in sorted(TEMPLATES.items()):
            docx = render(templates_dir / name, sample_context(kind))
            (out / f"{kind}.docx").write_bytes(docx)
            pdf = converter.convert(docx)
            (out / f"{kind}.pdf").write_bytes(pdf)
            subprocess.run(["pdftoppm", "-r", str(RESOLUTION), "-png", str(out / f"{kind}.pdf"),
                            str(out / kind)], check=True, timeout=120)
            pages += sorted(out.glob(f"{kind}-*.png"))
    return pages


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m generator.preview DIR")
    for page in write_previews(Path(argv[0])):
        print(page)


if __name__ == "__main__":
    main(sys.argv[1:])
