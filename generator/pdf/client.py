"""The worker's side of the resident converter: ``PdfConverter``.

Created once by the worker when it starts. Its first use (``start()`` or ``convert()``)
launches the helper (helper.py, under the Python that has ``uno``) in the converter's private
directory (mode 0700), which the worker and any process it forks reach alike through its unix
socket. The client talks to it with the wire format of helper.py, one request per connection;
an unreachable helper is replaced, a wedged one killed; without ``uno`` it converts cold.
``close()`` stops the helper and LibreOffice within STOP_TIMEOUT, then kills what is left.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from generator.pdf import helper
from generator.pdf.cold import convert_cold, find_soffice
from generator.pdf.errors import MESSAGES, PdfError
from generator.pdf.helper import (
    DEFAULT_TIMEOUT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    base_env,
    receive,
    remove_stale_pipes,
    send,
)

log = logging.getLogger(__name__)

HELPER_MARGIN = 30.0  # the client gives up this long after the conversion's own timeout
HELPER_SCRIPT = Path(helper.__file__).resolve()  # run as a script: see helper.py


class _HelperDownError(Exception):
    """The resident helper cannot be reached or started (not the document's fault)."""


_uno_pythons: dict[str, str | None] = {}


def find_uno_python(soffice: str) -> str | None:
    """A Python interpreter that imports ``uno`` for this LibreOffice, or None."""
    if soffice in _uno_pythons:
        return _uno_pythons[soffice]
    program = Path(os.path.realpath(soffice)).parent
    candidates = [str(program / "python"), "/usr/bin/python3", shutil.which("python3")]
    found = None
    for candidate in dict.fromkeys(c for c in candidates if c):
        if not os.access(candidate, os.X_OK):
            continue
        try:
            probe = subprocess.run([candidate, "-I", "-c", "import uno"], env=base_env(),
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                                   check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            found = candidate
            break
    _uno_pythons[soffice] = found
    return found


class PdfConverter:
    """One resident LibreOffice for this worker process (and any child it forks).

    ``available``: LibreOffice is installed (else ``convert`` raises PdfError "unavailable").
    ``resident``: it can be kept running (a Python with ``uno`` was found); otherwise
    ``convert`` uses ``convert_cold``.
    """

    def __init__(self, soffice: str | None = None, uno_python: str | None = None,
                 base_dir: Path | None = None) -> None:
        self.soffice = soffice or find_soffice()
        self.uno_python = None
        if self.soffice is not None:
            self.uno_python = uno_python or find_uno_python(self.soffice)
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._helper: subprocess.Popen | None = None
        self._closed = False
        self.directory: Path | None = None
        if self.resident:
            self.directory = Path(tempfile.mkdtemp(prefix="icli-pdf-", dir=base_dir))  # 0700

    @property
    def available(self) -> bool:
        return self.soffice is not None

    @property
    def resident(self) -> bool:
        return self.soffice is not None and self.uno_python is not None

    def __enter__(self) -> PdfConverter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, timeout: float = START_TIMEOUT) -> bool:
        """Launch the helper and LibreOffice now (call it before forking); never raises.
        Returns whether the resident LibreOffice is ready."""
        if not self.resident:
            return False
        try:
            self._call({"op": "start", "timeout": timeout}, b"", timeout)
        except (PdfError, _HelperDownError) as exc:
            log.warning("resident LibreOffice not started: %s", getattr(exc, "detail", exc))
            return False
        return True

    def resident_pid(self) -> int | None:
        """The PID of the resident ``soffice.bin``, None when none is running."""
        if not self.resident:
            return None
        try:
            reply, _ = self._call({"op": "status"}, b"", 10, spawn=False)
        except (PdfError, _HelperDownError):
            return None
        return reply.get("pid")

    def convert(self, docx: bytes, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """The PDF of a .docx; PdfError (no document content in it) on failure or timeout."""
        if not self.available:
            raise PdfError("unavailable")
        if not self.resident:
            return convert_cold(docx, timeout, self.soffice)
        try:
            _reply, pdf = self._call({"op": "convert", "timeout": timeout}, docx, timeout)
        except _HelperDownError as exc:
            log.warning("resident LibreOffice unreachable (%s): cold conversion", exc)
            return convert_cold(docx, timeout, self.soffice)
        return pdf

    def convert_cold(self, docx: bytes, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """A one-off ``soffice --convert-to`` with a fresh profile (fallback, benchmark)."""
        if not self.available:
            raise PdfError("unavailable")
        return convert_cold(docx, timeout, self.soffice)

    def close(self) -> None:
        """Stop LibreOffice and the helper, delete the private directory (profile included).
        Only the process that created the converter does it; in a forked child it is a no-op."""
        if os.getpid() != self._owner or self._closed:
            return
        self._closed = True
        if self.directory is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        try:
            try:
                self._call({"op": "quit"}, b"", STOP_TIMEOUT, spawn=False, closing=True)
            except (PdfError, _HelperDownError):
                if self._helper is not None:  # still starting (a stop during start()) or wedged
                    self._helper.terminate()
            if self._helper is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._helper.wait(max(0.1, deadline - time.monotonic()))
        finally:  # also when a second stop signal (RQ's cold shutdown) interrupts the wait
            if self._helper is not None and self._helper.poll() is None:
                self._helper.kill()
                self._helper.wait()
            for name in ("helper.pid", "soffice.pid"):  # a helper started by a work horse
                _kill_recorded(self.directory / name, self.directory)
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- plumbing --

    def _call(self, header: dict, body: bytes, timeout: float, *, spawn: bool = True,
              closing: bool = False) -> tuple[dict, bytes]:
        with self._lock:
            if self._closed and not closing:
                raise PdfError("unavailable", "converter closed")
            sock = self._connect(spawn)
            with sock:
                sock.settimeout(timeout if closing else timeout + HELPER_MARGIN)
                try:
                    send(sock, header, body)
                    reply, data = receive(sock)
                except TimeoutError:
                    self._kill_helper()  # wedged: the next call starts a new one
                    raise PdfError("timeout", "helper did not answer", timeout) from None
                except (OSError, ValueError) as exc:
                    raise _HelperDownError(type(exc).__name__) from None
        if not reply.get("ok"):
            reason = reply.get("reason")
            raise PdfError(reason if reason in MESSAGES else "failed",
                           str(reply.get("detail", ""))[:200], timeout)
        return reply, data

    def _connect(self, spawn: bool) -> socket.socket:
        assert self.directory is not None
        path = str(self.directory / "helper.sock")
        for attempt in range(2):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                return sock
            except OSError:
                sock.close()
            if attempt == 0:
                if not spawn:
                    break
                try:
                    self._spawn_helper()
                except OSError as exc:  # its private directory is gone (the worker was killed)
                    raise _HelperDownError(type(exc).__name__) from None
        raise _HelperDownError("helper not running")

    def _spawn_helper(self) -> None:
        """Start the helper unless another process (the worker, a work horse) just did."""
        assert self.directory is not None and self.uno_python is not None
        socket_path = self.directory / "helper.sock"
        lock_fd = os.open(self.directory / "start.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            if _connectable(socket_path):
                return
            if self._helper is not None and os.getpid() == self._owner:
                self._helper.kill()  # unreachable: gone or wedged (no-op if already reaped)
                self._helper.wait()
            for name in ("helper.pid", "soffice.pid"):  # leftovers of a killed helper
                _kill_recorded(self.directory / name, self.directory)
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
            command = [self.uno_python, "-I", str(HELPER_SCRIPT), "--serve",
                       str(self.directory), self.soffice, str(self._owner)]
            process = subprocess.Popen(command, env=base_env(self.directory),
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       start_new_session=True)  # not in the horse's group
            self._helper = process  # close() stops it even if this wait is interrupted
            deadline = time.monotonic() + 15
            while not _connectable(socket_path):
                if process.poll() is not None or time.monotonic() > deadline:
                    if process.poll() is None:
                        process.kill()
                    process.wait()
                    raise _HelperDownError(f"helper did not start (exit {process.returncode})")
                time.sleep(0.02)
        finally:
            os.close(lock_fd)

    def _kill_helper(self) -> None:
        assert self.directory is not None
        for name in ("helper.pid", "soffice.pid"):
            _kill_recorded(self.directory / name, self.directory)
        if self._helper is not None and os.getpid() == self._owner:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._helper.wait(5)


def _connectable(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _kill_recorded(pid_file: Path, directory: Path) -> None:
    """SIGKILL the process a pid file names ("PID [PIPE...]") if its command line still names
    our directory, wait for it, and remove the named pipes it left behind."""
    try:
        pid, *pipes = pid_file.read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""  # gone already
    if str(directory).encode() in cmdline:  # not a zombie, nor a reused pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.02)
    remove_stale_pipes(pipes)  # only those nobody listens on


