"""PdfError and its French messages (no document content in either)."""

from __future__ import annotations

from generator.pdf.helper import DEFAULT_TIMEOUT

MESSAGES = {
    "unavailable": "Conversion PDF indisponible : LibreOffice n'est pas installé sur ce serveur.",
    "timeout": "Conversion PDF interrompue : délai de {timeout:g} s dépassé.",
    "unreadable": "Conversion PDF impossible : LibreOffice ne peut pas lire ce document.",
    "failed": "Conversion PDF impossible : LibreOffice a échoué.",
}


class PdfError(Exception):
    """A conversion that did not give a PDF; ``reason`` is unavailable, timeout, unreadable
    or failed, ``detail`` a technical hint (exit code, exception type), never content."""

    def __init__(self, reason: str, detail: str = "", timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(MESSAGES[reason].format(timeout=timeout))
        self.reason = reason
        self.detail = detail
