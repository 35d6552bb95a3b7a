"""PDF conversion with a real LibreOffice: one resident process, reused, restarted, cleaned up.

Skipped when LibreOffice is not installed, except in CI (CI=true), where it is installed by
.ci/run and its absence is a failure. No timings are asserted here: see bench/documents.py.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import psutil
import pytest
from docx import Document

from generator import pdf as pdf_module
from generator.pdf import PdfConverter, PdfError, client, convert_cold
from generator.pdf import helper as helper_module

CANARY = "Zyxcanari-secret-0042"
PHRASES = ["Séance du 15 décembre à Saint-Denis", "« confidentiel » – œuvre, Noël, ça"]
CELLS = ["Référence", "Pseudonyme", "F-2026-0001", "Héloïse Ëxemple"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def libreoffice() -> str:
    soffice = pdf_module.find_soffice()
    if soffice is None:
        skip_or_fail("LibreOffice is not installed (no soffice or libreoffice on PATH): "
                     "apt-get install libreoffice-writer-nogui python3-uno")
    if pdf_module.find_uno_python(soffice) is None:
        skip_or_fail("no Python can import LibreOffice's uno module, the resident converter "
                     "cannot run: apt-get install python3-uno")
    return soffice


@pytest.fixture(scope="module")
def converter(libreoffice):
    with PdfConverter() as converter:
        assert converter.start()
        yield converter


def make_docx(*extra: str) -> bytes:
    document = Document()
    document.add_heading("Dossier de séance", level=1)
    for phrase in (*PHRASES, *extra):
        document.add_paragraph(phrase)
    table = document.add_table(rows=2, cols=2)
    for cell, text in zip((c for row in table.rows for c in row.cells), CELLS, strict=True):
        cell.text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pdf_text(data: bytes) -> str:
    if shutil.which("pdftotext") is None:
        skip_or_fail("pdftotext is not installed: apt-get install poppler-utils")
    result = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=data,
                            capture_output=True, check=True, timeout=60)
    return " ".join(result.stdout.decode("utf-8").split())


def office_process(pid: int | None, converter: PdfConverter) -> psutil.Process:
    assert pid is not None
    process = psutil.Process(pid)
    assert process.name().startswith("soffice")
    assert str(converter.directory) in " ".join(process.cmdline())  # its private profile
    return process


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # dead, not yet reaped
    except psutil.NoSuchProcess:
        return True


def children_naming(text: str) -> list[psutil.Process]:
    """This process's children whose command line contains ``text``. Others are skipped
    unread: another test's process may have ended (a zombie has no command line) or gone."""
    found = []
    for child in psutil.Process().children():
        try:
            if text in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.05)


# --- without LibreOffice ------------------------------------------------------------------------

def test_the_helper_script_runs_on_the_standard_library_alone():
    """The system Python runs helper.py in isolated mode: neither the venv nor this package
    is on its path (-S here keeps this venv's site-packages out too)."""
    result = subprocess.run([sys.executable, "-I", "-S", str(client.HELPER_SCRIPT)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("usage: python3 -I helper.py --serve"), result.stderr



def test_without_libreoffice_pdf_is_unavailable_and_nothing_starts(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    converter = PdfConverter()
    assert not converter.available and not converter.resident
    assert converter.directory is None
    assert converter.start() is False
    assert converter.resident_pid() is None
    with pytest.raises(PdfError) as raised:
        converter.convert(make_docx())
    assert raised.value.reason == "unavailable"
    assert "indisponible" in str(raised.value)
    with pytest.raises(PdfError):
        convert_cold(make_docx())
    converter.close()


# --- the resident LibreOffice ------------------------------------------------------------------

def test_a_docx_with_accents_and_a_table_becomes_a_pdf_with_its_text(converter):
    data = converter.convert(make_docx())
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    for expected in [*PHRASES, *CELLS, "Dossier de séance"]:
        assert expected in text


def test_one_resident_libreoffice_is_reused_across_conversions(converter):
    converter.convert(make_docx())
    pid = converter.resident_pid()
    office_process(pid, converter)
    for _ in range(3):
        assert converter.convert(make_docx()).startswith(b"%PDF")
        assert converter.resident_pid() == pid


def test_a_killed_libreoffice_is_restarted_on_the_next_conversion(converter):
    converter.convert(make_docx())
    pid = converter.resident_pid()
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    assert converter.convert(make_docx()).startswith(b"%PDF")
    new_pid = converter.resident_pid()
    assert new_pid != pid
    office_process(new_pid, converter)


def test_a_stuck_libreoffice_is_killed_at_the_timeout_and_restarted(converter):
    converter.convert(make_docx())
    pid = converter.resident_pid()
    os.kill(pid, signal.SIGSTOP)  # it will never answer
    with pytest.raises(PdfError) as raised:
        converter.convert(make_docx(CANARY), timeout=2)
    assert raised.value.reason == "timeout"
    assert "délai de 2 s dépassé" in str(raised.value)
    wait_gone(pid)  # killed, not merely timed out
    assert converter.convert(make_docx()).startswith(b"%PDF")
    assert converter.resident_pid() not in (None, pid)


def truncated_docx() -> bytes:
    return make_docx(CANARY)[:3000]


def zip_without_a_document() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", f"<Types>{CANARY}</Types>")
        archive.writestr("notes.txt", CANARY)
    return out.getvalue()


CORRUPT = {
    "plain text": f"{CANARY}\nnot a document at all\n".encode() * 20,
    "truncated docx": truncated_docx(),
    "zip without a document": zip_without_a_document(),
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_a_corrupt_document_gives_a_clean_error_and_libreoffice_survives(converter, name):
    converter.convert(make_docx())
    pid = converter.resident_pid()
    with pytest.raises(PdfError) as raised:
        converter.convert(CORRUPT[name])
    error = raised.value
    assert error.reason == "unreadable"
    assert str(error) == "Conversion PDF impossible : LibreOffice ne peut pas lire ce document."
    assert CANARY not in f"{error} {error.detail} {error.args!r}"
    assert converter.convert(make_docx()).startswith(b"%PDF")
    assert converter.resident_pid() == pid


def test_a_forked_work_horse_converts_with_the_same_libreoffice(converter):
    """A forked child (RQ's forking worker runs each job in one) reaches the worker's
    LibreOffice, and its close() (or its exit) leaves it running."""
    converter.convert(make_docx())
    pid = converter.resident_pid()
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # Python ≥ 3.12 warns about fork with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        status = 1
        try:
            os.close(read_end)
            data = converter.convert(make_docx())
            converter.close()  # no-op outside the creating process
            os.write(write_end, f"{data[:4].decode()} {converter.resident_pid()}".encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        report = reader.read().decode()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == f"%PDF {pid}"
    assert converter.convert(make_docx()).startswith(b"%PDF")
    assert converter.resident_pid() == pid


def test_a_killed_helper_is_replaced(converter):
    converter.convert(make_docx())
    helper = int((converter.directory / "helper.pid").read_text())
    office = converter.resident_pid()
    os.kill(helper, signal.SIGKILL)
    wait_gone(office)  # LibreOffice dies with its helper
    assert converter.convert(make_docx()).startswith(b"%PDF")
    assert int((converter.directory / "helper.pid").read_text()) != helper
    office_process(converter.resident_pid(), converter)


# --- private files ------------------------------------------------------------------------------

def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def test_the_private_directory_holds_no_document_and_is_gone_after_close(libreoffice):
    converter = PdfConverter()
    directory = converter.directory
    try:
        assert directory is not None and directory.stat().st_mode & 0o777 == 0o700
        converter.convert(make_docx(CANARY))
        helper = psutil.Process(int((directory / "helper.pid").read_text()))
        office = psutil.Process(converter.resident_pid())
        profile_url = (directory / "profile").as_uri()
        assert any(profile_url in arg for arg in office.cmdline())
        for path in files_under(directory):  # the document went through memory only
            assert path.suffix not in (".docx", ".pdf")
            assert CANARY.encode() not in path.read_bytes()
        socket_path = directory / "helper.sock"
        assert socket_path.stat().st_mode & 0o777 == 0o600
        ipc = helper_module.pipe_paths([helper_module.ipc_pipe_name(profile_url)])
        assert any(p.exists() for p in ipc)  # the name LibreOffice gives it
    finally:
        converter.close()
    assert not directory.exists()
    wait_gone(helper.pid)
    wait_gone(office.pid)
    assert not any(p.exists() for p in ipc)  # LibreOffice is killed: the helper removes it


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's directory for this test, recording the mode of the directories made in it."""
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    modes = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs):
        path = real_mkdtemp(*args, **kwargs)
        modes.append(os.stat(path).st_mode & 0o777)
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    return base, modes


def test_cold_conversion_works_in_a_private_directory_deleted_afterwards(libreoffice,
                                                                         private_tmp):
    base, modes = private_tmp
    data = convert_cold(make_docx())
    assert data.startswith(b"%PDF")
    assert "Héloïse Ëxemple" in pdf_text(data)
    assert modes == [0o700]
    assert list(base.iterdir()) == []


def test_cold_conversion_of_a_corrupt_document_is_a_clean_error(libreoffice, private_tmp):
    with pytest.raises(PdfError) as raised:
        convert_cold(CORRUPT["plain text"], timeout=60)
    assert raised.value.reason == "unreadable"
    assert CANARY not in f"{raised.value} {raised.value.detail}"
    base, _modes = private_tmp
    assert list(base.iterdir()) == []


def test_closing_twice_and_converting_after_close(libreoffice):
    converter = PdfConverter()
    converter.convert(make_docx())
    converter.close()
    converter.close()
    with pytest.raises(PdfError) as raised:
        converter.convert(make_docx())
    assert raised.value.reason == "unavailable"


def test_a_stop_while_the_helper_starts_stops_it_quietly(libreoffice, monkeypatch, capfd):
    """Ctrl-C reaches the worker while it waits for its new helper: close() must stop that
    helper, not pull its directory from under it (it then died with a traceback)."""
    real_connectable = client._connectable
    calls = []

    def interrupted_once_spawned(path):
        calls.append(path)
        if len(calls) == 2:  # the first wait after the helper's Popen
            raise KeyboardInterrupt
        return real_connectable(path)

    monkeypatch.setattr(client, "_connectable", interrupted_once_spawned)
    converter = PdfConverter()
    directory = str(converter.directory)
    with pytest.raises(KeyboardInterrupt):
        converter.start()
    helpers = children_naming(directory)
    assert len(helpers) == 1
    converter.close()
    wait_gone(helpers[0].pid)
    assert not Path(directory).exists()
    assert "Traceback" not in capfd.readouterr().err


def test_a_second_stop_signal_during_close_still_removes_everything(libreoffice):
    """Ctrl-C in a terminal, then `icli run` forwarding SIGTERM: RQ's cold shutdown raises
    SystemExit while close() waits for the helper. The profile directory must still go."""
    converter = PdfConverter()
    assert converter.start()
    directory, office = converter.directory, converter.resident_pid()
    helper = psutil.Process(int((directory / "helper.pid").read_text()))

    real_wait, interrupted = converter._helper.wait, []

    def cold_shutdown_once(*args, **kwargs):
        if not interrupted:
            interrupted.append(True)
            raise SystemExit(1)
        return real_wait(*args, **kwargs)

    converter._helper.wait = cold_shutdown_once
    with pytest.raises(SystemExit):
        converter.close()
    wait_gone(helper.pid)
    wait_gone(office)
    assert not directory.exists()


def test_closing_kills_a_libreoffice_that_does_not_answer(libreoffice):
    """A worker's stop must fit in a supervisor's grace period: close() does not wait for
    LibreOffice (it used to ask it to terminate over UNO, a call with no time limit)."""
    converter = PdfConverter()
    assert converter.start()
    directory, office = converter.directory, converter.resident_pid()
    helper = int((directory / "helper.pid").read_text())
    os.kill(office, signal.SIGSTOP)  # it will never answer
    started = time.monotonic()
    converter.close()
    closing = time.monotonic() - started
    wait_gone(office)
    wait_gone(helper)
    assert not directory.exists()
    assert closing < 3 * pdf_module.STOP_TIMEOUT, f"{closing:.1f} s"


def test_the_helper_cleans_up_when_its_worker_dies(libreoffice, tmp_path):
    """A worker killed with SIGKILL never calls close(): the helper notices and tidies up."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys, time\n"
        "from generator.pdf import PdfConverter\n"
        "c = PdfConverter()\n"
        "assert c.start()\n"
        "print(c.directory, c.resident_pid(), flush=True)\n"
        "time.sleep(600)\n")
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen([sys.executable, str(script)], cwd=root, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(root)})
    try:
        line = worker.stdout.readline().decode().split()
        directory, office_pid = Path(line[0]), int(line[1])
    finally:
        worker.kill()
        worker.wait()
        worker.stdout.close()
    wait_gone(office_pid)
    deadline = time.monotonic() + 30
    while directory.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not directory.exists()


def test_cold_conversion_past_its_timeout_is_killed_with_its_children(libreoffice,
                                                                      private_tmp):
    base, _modes = private_tmp
    with pytest.raises(PdfError) as raised:
        convert_cold(make_docx(), timeout=0.3)
    assert raised.value.reason == "timeout"
    assert list(base.iterdir()) == []
    left = [p for p in psutil.process_iter(["cmdline"])
            if str(base) in " ".join(p.info["cmdline"] or [])]
    assert all(gone(p.pid) for p in left)
