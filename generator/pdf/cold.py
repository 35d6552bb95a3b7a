"""The cold path: one ``soffice --convert-to pdf`` per document, with a fresh profile.

The fallback when no Python with ``uno`` is found or the helper cannot run, and the
benchmark's comparison: about 1.2 s more than the resident converter per document, its files
in a private temporary directory (0700) deleted afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from generator.pdf.errors import PdfError
from generator.pdf.helper import (
    DEFAULT_TIMEOUT,
    DOCX_FILTER,
    PDF_FILTER,
    PDF_OPTIONS,
    base_env,
    ipc_pipe_name,
    remove_stale_pipes,
)


def find_soffice() -> str | None:
    """The LibreOffice launcher on PATH (``soffice``, else ``libreoffice``), or None."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def _json_options() -> str:
    """PDF_OPTIONS in the JSON form ``--convert-to`` takes (LibreOffice ≥ 7.4)."""
    return json.dumps({name: {"type": "boolean", "value": str(value).lower()}
                       for name, value in PDF_OPTIONS.items()}, separators=(",", ":"))


def convert_cold(docx: bytes, timeout: float = DEFAULT_TIMEOUT,
                 soffice: str | None = None) -> bytes:
    """One ``soffice --convert-to pdf`` run with a fresh profile in a private temporary
    directory (0700), deleted afterwards; the whole process group is killed on timeout."""
    soffice = soffice or find_soffice()
    if soffice is None:
        raise PdfError("unavailable")
    work = Path(tempfile.mkdtemp(prefix="icli-pdf-cold-"))  # mode 0700
    profile_url = (work / "profile").as_uri()
    try:
        source = work / "document.docx"
        fd = os.open(source, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(docx)
        (work / "tmp").mkdir(mode=0o700)
        command = [soffice, "--headless", "--invisible", "--nologo", "--norestore",
                   "--nolockcheck", f"-env:UserInstallation={profile_url}",
                   f"--infilter={DOCX_FILTER}",
                   "--convert-to", f"pdf:{PDF_FILTER}:{_json_options()}",
                   "--outdir", str(work / "out"), str(source)]
        process = subprocess.Popen(command, cwd=work, env=base_env(work, work / "tmp"),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise PdfError("timeout", "cold conversion", timeout) from None
        finally:
            if process.returncode is None:  # not reaped yet: its process group is still ours
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # soffice.bin under oosplash too
                process.wait()
        result = work / "out" / "document.pdf"
        if not result.is_file():
            raise PdfError("unreadable", f"soffice exit code {code}, no PDF")
        pdf = result.read_bytes()
        if not pdf.startswith(b"%PDF"):
            raise PdfError("failed", "output is not a PDF")
        return pdf
    finally:
        shutil.rmtree(work, ignore_errors=True)
        remove_stale_pipes([ipc_pipe_name(profile_url)])


