"""Word → PDF with LibreOffice, one resident LibreOffice per worker process.

``PdfConverter`` is created once by the worker when it starts. Its first use (``start()`` or
``convert()``) launches a small helper under the Python that has LibreOffice's ``uno`` module
(Debian's ``python3-uno`` is for /usr/bin/python3: the venv cannot import it). The helper
starts ``soffice.bin`` with a private profile and a UNO pipe, keeps it running, and converts
one document at a time in memory: the .docx goes in as a UNO input stream and the PDF comes
back as an output stream, so no plaintext file is written (docs/security.md, rule 10). The helper
listens on a unix socket inside the converter's private directory (mode 0700), which the worker
and any process it forks reach alike. A LibreOffice found dead is restarted; one
still busy when the timeout expires is killed and restarted; the helper and LibreOffice end
with the worker (``close()``, or on their own when the worker process is gone).

``convert_cold`` is the fallback (no ``uno`` module, or the helper cannot run) and the
benchmark's comparison: ``soffice --convert-to pdf`` with a fresh profile per call, about
1.2 s each, its files in a private temporary directory deleted afterwards.

Without LibreOffice, ``available`` is False: the product offers the .docx only.

Error messages never contain document content. This file is also the helper's script, run by
the system Python: it imports the standard library only, and ``uno`` inside the helper.

In the worker::

    converter = PdfConverter()      # in worker.main, at start (finds soffice, uno)
    converter.start()               # optional warm-up: LibreOffice ready for the first job
    ...                             # in a job: converter.convert(docx_bytes)
    converter.close()               # on the way out (a no-op in forked children)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0  # seconds for one conversion, a LibreOffice (re)start included
START_TIMEOUT = 60.0  # seconds for the helper's first LibreOffice start
HELPER_MARGIN = 30.0  # the client gives up this long after the conversion's own timeout
# close() gives the helper this long to kill LibreOffice and exit, then kills both: a stop
# must fit well within a supervisor's grace period (docker stop: 10 s, worker's shutdown
# included). LibreOffice is killed, not asked to quit: its profile is private and deleted.
STOP_TIMEOUT = 4.0
MAX_DOCUMENT = 256 * 1024 * 1024  # bytes, either way
DOCX_FILTER = "MS Word 2007 XML"  # forced: other bytes are refused, never read as plain text
PDF_FILTER = "writer_pdf_Export"
# Logos stay lossless PNG, embedded once: no JPEG re-encoding of each page header's images
# (a third of the export time of a 40-page dossier). Tagged PDF stays on (accessibility).
PDF_OPTIONS = {"UseLosslessCompression": True, "ReduceImageResolution": False}
_PIPE_DIRS = ("/tmp", "/var/tmp")  # noqa: S108  (where LibreOffice's named pipes live)
_ENV_KEPT = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ",
             "FONTCONFIG_FILE", "FONTCONFIG_PATH", "USER", "LOGNAME")

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


class _HelperDown(Exception):
    """The resident helper cannot be reached or started (not the document's fault)."""


# --- locating LibreOffice -------------------------------------------------------------------

def find_soffice() -> str | None:
    """The LibreOffice launcher on PATH (``soffice``, else ``libreoffice``), or None."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def office_binary(soffice: str) -> str:
    """``soffice.bin`` next to the launcher when there is one: its PID is LibreOffice's own
    (the launcher is a shell script around ``oosplash``, which forks)."""
    program = Path(os.path.realpath(soffice)).parent
    binary = program / "soffice.bin"
    return str(binary) if binary.is_file() else soffice


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
            probe = subprocess.run([candidate, "-I", "-c", "import uno"], env=_base_env(),
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                                   check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            found = candidate
            break
    _uno_pythons[soffice] = found
    return found


def _base_env(home: Path | None = None, tmp: Path | None = None) -> dict[str, str]:
    """A small environment for LibreOffice and the helper: none of the worker's secrets."""
    env = {key: os.environ[key] for key in _ENV_KEPT if key in os.environ}
    env.setdefault("PATH", os.defpath)
    if home is not None:
        env["HOME"] = str(home)
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    env["SAL_ENABLE_FILE_LOCKING"] = "1"
    return env


def _pipe_paths(names: list[str]) -> list[Path]:
    uid = os.getuid()
    return [Path(d) / f"OSL_PIPE_{uid}_{name}" for d in _PIPE_DIRS for name in names]


def _ipc_pipe_name(profile_url: str) -> str:
    """LibreOffice's single-instance pipe: MD5 of the UTF-16 profile URL (not for security)."""
    digest = hashlib.md5(profile_url.encode("utf-16-le"), usedforsecurity=False).hexdigest()
    return f"SingleOfficeIPC_{digest}"


def _remove_stale_pipes(names: list[str]) -> None:
    """Unlink the named pipes a killed LibreOffice left in /tmp (nobody listens on them)."""
    for path in _pipe_paths(names):
        try:
            if not stat.S_ISSOCK(path.lstat().st_mode):
                continue
        except OSError:
            continue
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            try:
                probe.connect(str(path))
                continue  # alive: not ours to remove
            except OSError:
                pass
        with contextlib.suppress(OSError):
            path.unlink()


# --- the cold path ----------------------------------------------------------------------------

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
        process = subprocess.Popen(command, cwd=work, env=_base_env(work, work / "tmp"),
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
        _remove_stale_pipes([_ipc_pipe_name(profile_url)])


# --- the client side: what the worker holds ------------------------------------------------------

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
        except (PdfError, _HelperDown) as exc:
            log.warning("resident LibreOffice not started: %s", getattr(exc, "detail", exc))
            return False
        return True

    def resident_pid(self) -> int | None:
        """The PID of the resident ``soffice.bin``, None when none is running."""
        if not self.resident:
            return None
        try:
            reply, _ = self._call({"op": "status"}, b"", 10, spawn=False)
        except (PdfError, _HelperDown):
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
        except _HelperDown as exc:
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
            except (PdfError, _HelperDown):
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
                    _send(sock, header, body)
                    reply, data = _receive(sock)
                except TimeoutError:
                    self._kill_helper()  # wedged: the next call starts a new one
                    raise PdfError("timeout", "helper did not answer", timeout) from None
                except (OSError, ValueError) as exc:
                    raise _HelperDown(type(exc).__name__) from None
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
                    raise _HelperDown(type(exc).__name__) from None
        raise _HelperDown("helper not running")

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
            command = [self.uno_python, "-I", str(Path(__file__).resolve()), "--serve",
                       str(self.directory), self.soffice, str(self._owner)]
            process = subprocess.Popen(command, env=_base_env(self.directory),
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       start_new_session=True)  # not in the horse's group
            self._helper = process  # close() stops it even if this wait is interrupted
            deadline = time.monotonic() + 15
            while not _connectable(socket_path):
                if process.poll() is not None or time.monotonic() > deadline:
                    if process.poll() is None:
                        process.kill()
                    process.wait()
                    raise _HelperDown(f"helper did not start (exit {process.returncode})")
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
    _remove_stale_pipes(pipes)  # only those nobody listens on


# --- the wire: 4-byte length, JSON header (with the body's size), body ---------------------------

def _send(sock: socket.socket, header: dict, body: bytes = b"") -> None:
    head = json.dumps({**header, "size": len(body)}).encode()
    sock.sendall(struct.pack(">I", len(head)) + head)
    if body:
        sock.sendall(body)


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(sock: socket.socket) -> tuple[dict, bytes]:
    (size,) = struct.unpack(">I", _receive_exactly(sock, 4))
    if size > 65536:
        raise ValueError("header too large")
    header = json.loads(_receive_exactly(sock, size))
    body_size = int(header.get("size", 0))
    if not 0 <= body_size <= MAX_DOCUMENT:
        raise ValueError("body too large")
    return header, _receive_exactly(sock, body_size)


# --- the helper: runs under the system Python, owns soffice.bin ---------------------------------

class _Failure(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _parent_death_signal():  # pragma: no cover - runs in the helper
    """A preexec function: LibreOffice gets SIGKILL when the helper dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def set_signal() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG

    return set_signal


class _Office:  # pragma: no cover - runs in the helper
    """soffice.bin with a private profile, and the UNO bridge to it."""

    def __init__(self, directory: Path, soffice: str) -> None:
        import uno

        self.uno = uno
        self.directory = directory
        self.binary = office_binary(soffice)
        self.profile_url = (directory / "profile").as_uri()
        self.tmp = directory / "tmp"
        self.tmp.mkdir(mode=0o700, exist_ok=True)
        self.local = uno.getComponentContext()
        self.process: subprocess.Popen | None = None
        self.context = None
        self.desktop = None
        self.pipe_name = ""
        self.timed_out = False
        self.preexec = _parent_death_signal()
        self.sink_class = _sink_class()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, deadline: float) -> None:
        from com.sun.star.connection import NoConnectException

        self.stop()
        resolver = self.local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", self.local)
        for _ in range(3):  # a new profile makes LibreOffice exit once with 81, "restart me"
            self.pipe_name = f"icli-pdf-{secrets.token_hex(8)}"
            url = f"uno:pipe,name={self.pipe_name};urp;StarOffice.ComponentContext"
            self.process = subprocess.Popen(
                [self.binary, "--headless", "--invisible", "--nologo", "--norestore",
                 "--nodefault", "--nolockcheck", f"-env:UserInstallation={self.profile_url}",
                 f"--accept=pipe,name={self.pipe_name};urp;StarOffice.ComponentContext"],
                cwd=self.tmp, env=_base_env(self.directory, self.tmp),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=self.preexec)
            code = None
            while code is None:
                if time.monotonic() > deadline:
                    self.kill()
                    self.process.wait()
                    raise _Failure("timeout", "LibreOffice did not start in time")
                try:
                    context = resolver.resolve(url)
                except NoConnectException:
                    time.sleep(0.05)
                    code = self.process.poll()
                    continue
                except Exception as exc:  # still starting up
                    log_line(f"LibreOffice not ready yet: {type(exc).__name__}")
                    time.sleep(0.1)
                    code = self.process.poll()
                    continue
                self.context = context
                self.desktop = context.ServiceManager.createInstanceWithContext(
                    "com.sun.star.frame.Desktop", context)
                (self.directory / "soffice.pid").write_text(
                    f"{self.process.pid} {self.pipe_name} {_ipc_pipe_name(self.profile_url)}")
                return
            self._forget()
            if code != 81:
                raise _Failure("failed", f"LibreOffice exited at start with code {code}")
        raise _Failure("failed", "LibreOffice kept asking for a restart")

    def kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Kill LibreOffice. Nothing in it is worth a clean exit (the profile is private and
        goes with the converter), and ``desktop.terminate()`` is a UNO call with no time
        limit, then a wait: under load it took seconds, or hung on a LibreOffice that would
        not answer."""
        if self.process is None:
            return
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_TIMEOUT)  # a killed process is reaped at once (not D state)
        self._forget()

    def _forget(self) -> None:
        self.context = self.desktop = None
        if self.process is not None and self.process.poll() is None:
            self.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT)
        self.process = None
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "soffice.pid").unlink()
        _remove_stale_pipes([self.pipe_name, _ipc_pipe_name(self.profile_url)])

    def _expire(self) -> None:  # the watchdog, in a timer thread
        self.timed_out = True
        self.kill()

    def convert(self, data: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        self.timed_out = False
        watchdog = threading.Timer(timeout, self._expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            for attempt in range(2):
                try:
                    if not self.alive:
                        self.start(deadline)
                    return self._convert_once(data)
                except _Failure as failure:
                    if self.timed_out:
                        raise _Failure("timeout", "killed by the watchdog") from None
                    if failure.reason != "crashed" or attempt:
                        raise
                    # LibreOffice died under this document or before it: once more, fresh
            raise _Failure("failed", "unreachable")
        finally:
            watchdog.cancel()

    def _convert_once(self, data: bytes) -> bytes:
        from com.sun.star.beans import PropertyValue

        uno = self.uno
        try:
            stream = self.context.ServiceManager.createInstanceWithArgumentsAndContext(
                "com.sun.star.io.SequenceInputStream", (uno.ByteSequence(data),), self.context)
        except Exception as exc:
            raise _Failure("crashed", type(exc).__name__) from None
        load = (PropertyValue(Name="InputStream", Value=stream),
                PropertyValue(Name="FilterName", Value=DOCX_FILTER),
                PropertyValue(Name="Hidden", Value=True),
                PropertyValue(Name="ReadOnly", Value=True),
                PropertyValue(Name="MacroExecutionMode", Value=0),  # NEVER_EXECUTE
                PropertyValue(Name="UpdateDocMode", Value=0))  # NO_UPDATE: links stay as is
        try:
            document = self.desktop.loadComponentFromURL("private:stream", "_blank", 0, load)
        except Exception as exc:
            if not self.alive or self.timed_out:
                raise _Failure("crashed", type(exc).__name__) from None
            raise _Failure("unreadable", type(exc).__name__) from None
        if document is None:
            if not self.alive:
                raise _Failure("crashed", "no document")
            raise _Failure("unreadable", "no document")
        sink = self.sink_class()
        options = uno.Any("[]com.sun.star.beans.PropertyValue", tuple(
            PropertyValue(Name=name, Value=value) for name, value in PDF_OPTIONS.items()))
        try:
            uno.invoke(document, "storeToURL", ("private:stream", (
                PropertyValue(Name="FilterName", Value=PDF_FILTER),
                PropertyValue(Name="FilterData", Value=options),
                PropertyValue(Name="OutputStream", Value=sink))))
        except Exception as exc:
            if not self.alive or self.timed_out:
                raise _Failure("crashed", type(exc).__name__) from None
            raise _Failure("failed", f"export: {type(exc).__name__}") from None
        finally:
            with contextlib.suppress(Exception):
                document.close(True)
        pdf = b"".join(sink.chunks)
        if not pdf.startswith(b"%PDF"):
            raise _Failure("failed", "output is not a PDF")
        return pdf


def _sink_class():  # pragma: no cover - runs in the helper
    import unohelper
    from com.sun.star.io import XOutputStream

    class Sink(unohelper.Base, XOutputStream):
        def __init__(self) -> None:
            self.chunks: list[bytes] = []

        def writeBytes(self, data) -> None:
            self.chunks.append(data.value)

        def flush(self) -> None:
            pass

        def closeOutput(self) -> None:
            pass

    return Sink


def log_line(message: str) -> None:  # pragma: no cover - runs in the helper
    print(f"icli pdf helper: {message}", file=sys.stderr, flush=True)


def _owner_watch(owner: int):  # pragma: no cover - runs in the helper
    """A file descriptor readable when the worker exits (pidfd), else None (then polled)."""
    try:
        return os.pidfd_open(owner)
    except (AttributeError, OSError):
        return None


def _owner_alive(owner: int) -> bool:  # pragma: no cover - runs in the helper
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(directory: Path, soffice: str, owner: int) -> int:  # pragma: no cover - helper
    """The helper's loop: one request at a time on ``directory/helper.sock``."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.umask(0o077)
    office = _Office(directory, soffice)
    socket_path = directory / "helper.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    owner_fd = _owner_watch(owner)
    owner_gone = False
    try:
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        server.bind(str(socket_path))
        os.chmod(socket_path, 0o600)
        server.listen(16)
        (directory / "helper.pid").write_text(str(os.getpid()))
        while True:
            watched = [server] + ([owner_fd] if owner_fd is not None else [])
            ready, _, _ = select.select(watched, [], [], 1.0)
            if (owner_fd is not None and owner_fd in ready) or not _owner_alive(owner):
                owner_gone = True
                return 0
            if server not in ready:
                continue
            connection, _ = server.accept()
            with connection:
                if not _handle(office, connection):
                    return 0
            if office.process is not None and not office.alive:  # killed by the watchdog
                with contextlib.suppress(_Failure):
                    office.start(time.monotonic() + START_TIMEOUT)
    finally:
        with contextlib.suppress(Exception):
            office.stop()
        server.close()
        if owner_fd is not None:
            os.close(owner_fd)
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        with contextlib.suppress(FileNotFoundError):
            (directory / "helper.pid").unlink()
        if owner_gone:  # nobody will call close(): the profile goes now
            shutil.rmtree(directory, ignore_errors=True)


def _handle(office: _Office, connection: socket.socket) -> bool:  # pragma: no cover - helper
    """Answer one request; False when asked to quit."""
    connection.settimeout(60)
    try:
        request, body = _receive(connection)
    except (OSError, ValueError):
        return True
    op = request.get("op")
    timeout = float(request.get("timeout") or DEFAULT_TIMEOUT)
    reply: dict = {"ok": True}
    data = b""
    try:
        if op == "convert":
            data = office.convert(body, timeout)
        elif op == "start":
            if not office.alive:
                office.start(time.monotonic() + timeout)
        elif op == "status":
            pass
        elif op == "quit":
            office.stop()
        else:
            raise _Failure("failed", "unknown request")
        reply["pid"] = office.process.pid if office.alive else None
    except _Failure as failure:
        reason = "failed" if failure.reason == "crashed" else failure.reason
        reply = {"ok": False, "reason": reason, "detail": failure.detail}
        log_line(f"{op}: {reason} ({failure.detail})")
    except Exception as exc:
        reply = {"ok": False, "reason": "failed", "detail": type(exc).__name__}
        log_line(f"{op}: unexpected {type(exc).__name__}")
    with contextlib.suppress(OSError):  # the asker may be gone (a killed work horse)
        _send(connection, reply, data)
    del body, data
    return op != "quit"


if __name__ == "__main__":  # pragma: no cover - the helper, started by PdfConverter
    if len(sys.argv) != 5 or sys.argv[1] != "--serve":
        sys.exit("usage: python -I pdf.py --serve DIRECTORY SOFFICE OWNER_PID")
    sys.exit(serve(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
