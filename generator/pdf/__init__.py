"""Word → PDF with LibreOffice, one resident LibreOffice per worker process.

- ``client.py``: ``PdfConverter``, what the worker holds. Its first use launches the helper
  and keeps LibreOffice running for the next documents; it falls back to the cold path.
- ``helper.py``: the helper, run as a script by the system Python that has ``uno`` (standard
  library only); it owns ``soffice.bin`` and converts through UNO streams (LibreOffice's own
  temporary files stay in the converter's private directory). Also the constants and wire
  format both sides share.
- ``cold.py``: ``convert_cold``, one ``soffice --convert-to pdf`` per document with a fresh
  profile (the fallback, and the benchmark's comparison); ``find_soffice``.
- ``errors.py``: ``PdfError``, with French messages and never document content.

Without LibreOffice, ``available`` is False: the product offers the .docx only.

In the worker::

    converter = PdfConverter()      # in worker.main, at start (finds soffice, uno)
    converter.start()               # optional warm-up: LibreOffice ready for the first job
    ...                             # in a job: converter.convert(docx_bytes)
    converter.close()               # on the way out, bounded (a no-op in forked children)
"""

from generator.pdf.client import PdfConverter, find_uno_python
from generator.pdf.cold import convert_cold, find_soffice
from generator.pdf.errors import MESSAGES, PdfError
from generator.pdf.helper import (
    DEFAULT_TIMEOUT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    office_binary,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "MESSAGES",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "PdfConverter",
    "PdfError",
    "convert_cold",
    "find_soffice",
    "find_uno_python",
    "office_binary",
]
