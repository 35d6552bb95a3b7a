"""The resident converter's helper: the process that owns LibreOffice (``soffice.bin``).

``PdfConverter`` (client.py) runs this file as a script under the Python that has
LibreOffice's ``uno`` module — Debian's ``python3-uno`` is for /usr/bin/python3, which the
venv cannot import — as ``python3 -I helper.py --serve DIRECTORY SOFFICE OWNER_PID``. In
isolated mode neither the venv nor this package is on its path: this file imports the
standard library only (``uno`` inside the helper). The client and the cold path import the
pieces both sides must agree on from here: the conversion filters and options, the timeouts,
the small environment given to LibreOffice, its named pipes, and the wire format.

The helper starts ``soffice.bin`` with a private profile (in the converter's 0700 directory)
and a UNO pipe (0700), keeps it running, and converts one document at a time: the .docx goes
in as a UNO input stream and the PDF comes back as an output stream, so no file of ours holds
either. LibreOffice itself still spools while it works — the document's unpacked XML (its
text) and the PDF — to temporary files in its TMPDIR: ``DIRECTORY/tmp``, inside the 0700
directory, deleted by LibreOffice after each conversion and with the directory
(docs/security.md, rule 10). It listens on ``DIRECTORY/helper.sock`` (0600).
A LibreOffice found dead is restarted; one still busy when the timeout expires is killed by a
watchdog and restarted; LibreOffice gets SIGKILL when the helper dies (PR_SET_PDEATHSIG), and
the helper removes the directory itself when the worker (OWNER_PID) is gone. To stop,
LibreOffice is killed: there is nothing in it to save. Replies carry a reason and a technical
detail (an exception's type), never document content.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
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
import threading
import time
from pathlib import Path

DEFAULT_TIMEOUT = 60.0  # seconds for one conversion, a LibreOffice (re)start included
START_TIMEOUT = 60.0  # seconds for the helper's first LibreOffice start
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


# --- LibreOffice's environment and named pipes (also used by the client and the cold path) --

def office_binary(soffice: str) -> str:
    """``soffice.bin`` next to the launcher when there is one: its PID is LibreOffice's own
    (the launcher is a shell script around ``oosplash``, which forks)."""
    program = Path(os.path.realpath(soffice)).parent
    binary = program / "soffice.bin"
    return str(binary) if binary.is_file() else soffice


def base_env(home: Path | None = None, tmp: Path | None = None) -> dict[str, str]:
    """A small environment for LibreOffice and the helper: none of the worker's secrets."""
    env = {key: os.environ[key] for key in _ENV_KEPT if key in os.environ}
    env.setdefault("PATH", os.defpath)
    if home is not None:
        env["HOME"] = str(home)
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    env["SAL_ENABLE_FILE_LOCKING"] = "1"
    return env


def pipe_paths(names: list[str]) -> list[Path]:
    uid = os.getuid()
    return [Path(d) / f"OSL_PIPE_{uid}_{name}" for d in _PIPE_DIRS for name in names]


def ipc_pipe_name(profile_url: str) -> str:
    """LibreOffice's single-instance pipe: MD5 of the UTF-16 profile URL (not for security),
    each byte in hexadecimal without a leading zero, as LibreOffice writes it."""
    digest = hashlib.md5(profile_url.encode("utf-16-le"), usedforsecurity=False).digest()
    return "SingleOfficeIPC_" + "".join(f"{byte:x}" for byte in digest)


def remove_stale_pipes(names: list[str]) -> None:
    """Unlink the named pipes a killed LibreOffice left in /tmp (nobody listens on them)."""
    for path in pipe_paths(names):
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


# --- the wire: 4-byte length, JSON header (with the body's size), body ---------------------------

def send(sock: socket.socket, header: dict, body: bytes = b"") -> None:
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


def receive(sock: socket.socket) -> tuple[dict, bytes]:
    (size,) = struct.unpack(">I", _receive_exactly(sock, 4))
    if size > 65536:
        raise ValueError("header too large")
    header = json.loads(_receive_exactly(sock, size))
    body_size = int(header.get("size", 0))
    if not 0 <= body_size <= MAX_DOCUMENT:
        raise ValueError("body too large")
    return header, _receive_exactly(sock, body_size)


# --- the helper: runs under the system Python, owns soffice.bin ---------------------------------

class _HelperError(Exception):
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
                cwd=self.tmp, env=base_env(self.directory, self.tmp),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=self.preexec)
            code = None
            while code is None:
                if time.monotonic() > deadline:
                    self.kill()
                    self.process.wait()
                    raise _HelperError("timeout", "LibreOffice did not start in time")
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
                    f"{self.process.pid} {self.pipe_name} {ipc_pipe_name(self.profile_url)}")
                return
            self._forget()
            if code != 81:
                raise _HelperError("failed", f"LibreOffice exited at start with code {code}")
        raise _HelperError("failed", "LibreOffice kept asking for a restart")

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
        remove_stale_pipes([self.pipe_name, ipc_pipe_name(self.profile_url)])

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
                except _HelperError as failure:
                    if self.timed_out:
                        raise _HelperError("timeout", "killed by the watchdog") from None
                    if failure.reason != "crashed" or attempt:
                        raise
                    # LibreOffice died under this document or before it: once more, fresh
            raise _HelperError("failed", "unreachable")
        finally:
            watchdog.cancel()

    def _convert_once(self, data: bytes) -> bytes:
        from com.sun.star.beans import PropertyValue

        uno = self.uno
        try:
            stream = self.context.ServiceManager.createInstanceWithArgumentsAndContext(
                "com.sun.star.io.SequenceInputStream", (uno.ByteSequence(data),), self.context)
        except Exception as exc:
            raise _HelperError("crashed", type(exc).__name__) from None
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
                raise _HelperError("crashed", type(exc).__name__) from None
            raise _HelperError("unreadable", type(exc).__name__) from None
        if document is None:
            if not self.alive:
                raise _HelperError("crashed", "no document")
            raise _HelperError("unreadable", "no document")
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
                raise _HelperError("crashed", type(exc).__name__) from None
            raise _HelperError("failed", f"export: {type(exc).__name__}") from None
        finally:
            with contextlib.suppress(Exception):
                document.close(True)
        pdf = b"".join(sink.chunks)
        if not pdf.startswith(b"%PDF"):
            raise _HelperError("failed", "output is not a PDF")
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
                with contextlib.suppress(_HelperError):
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
        request, body = receive(connection)
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
            raise _HelperError("failed", "unknown request")
        reply["pid"] = office.process.pid if office.alive else None
    except _HelperError as failure:
        reason = "failed" if failure.reason == "crashed" else failure.reason
        reply = {"ok": False, "reason": reason, "detail": failure.detail}
        log_line(f"{op}: {reason} ({failure.detail})")
    except Exception as exc:
        reply = {"ok": False, "reason": "failed", "detail": type(exc).__name__}
        log_line(f"{op}: unexpected {type(exc).__name__}")
    with contextlib.suppress(OSError):  # the asker may be gone (a killed work horse)
        send(connection, reply, data)
    del body, data
    return op != "quit"


if __name__ == "__main__":  # pragma: no cover - the helper, started by PdfConverter
    if len(sys.argv) != 5 or sys.argv[1] != "--serve":
        sys.exit("usage: python3 -I helper.py --serve DIRECTORY SOFFICE OWNER_PID")
    sys.exit(serve(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])))

