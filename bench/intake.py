"""Web throughput benchmark: the sheet save and the sheet page over HTTP, against a bare
Flask + WTForms app under the same gunicorn settings (issue 18).

    .venv/bin/python bench/intake.py [--seconds 8] [--clients 8,32]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--no-sqlite]
        [--redis redis://127.0.0.1:6379/9]

For each database (a temporary SQLite file; PostgreSQL when --postgres is given: a database
``icli_bench_intake`` is created on that server and dropped afterwards) it migrates, seeds a
referent and one draft sheet per client (synthetic people from tests/factories.py), starts
``gunicorn --workers 2 --threads 4 --preload intake.wsgi:app`` as `icli web` does, and runs
two scenarios for ``--seconds`` each at every client count, after a warm-up:

- save: POST the complete edit form with a changed text, as a logged-in referent (one session
  per client, its CSRF token read once from the form, as a browser showing it); the draft is
  saved (302; the redirect is not followed: the edit page it leads to analyses every text;
  the flash message the save puts in the session cookie is dropped, as that page would);
- view: GET the sheet's page (the identity decrypted, its audit row written first).

The baseline is ``bench/bare_form.py`` under the same gunicorn settings: POST the same fields,
validated by Flask-WTF with CSRF (302), and GET its form page. On the last database it also
runs the app with one worker (the scaling from 1 to 2 workers), and it prints each web
worker's own memory (USS, and PSS, from /proc/PID/smaps_rollup) next to the gunicorn
master's, which loaded the language model before forking.

Targets (issue 18, PostgreSQL, 2 cores): throughput ≥ 0.5× the bare app at 8 and 32 clients;
p99 ≤ 2× the bare app's p99; 2 workers ≥ 1.5× 1 worker; each web worker ≤ 150 MB of its own.
Nothing is asserted: the load generator shares the machine's cores with the servers, so run it
on an otherwise idle machine and compare figures of the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from shared.config import load_settings  # noqa: E402
from shared.db import make_engine, make_session_factory  # noqa: E402
from shared.demo import demo_values  # noqa: E402
from shared.domain import audit  # noqa: E402
from shared.domain.reference import ensure_reference_defaults  # noqa: E402
from shared.domain.users import RoleSpec, create_user  # noqa: E402
from shared.encrypted import Vault  # noqa: E402
from shared.keys import load_keyring  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.passwords import use_fast_hashing  # noqa: E402
from tests.factories import PASSWORD, canary_identity, make_sheet, reference_data  # noqa: E402
from tests.helpers import sheet_form  # noqa: E402

PG_DATABASE = "icli_bench_intake"
REFERENT = "referente.bench@icli.invalid"
THREADS = 4  # per gunicorn worker, as `icli web`
WARM_UP = 2.0  # seconds of traffic before each measurement
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
TICKET_RE = re.compile(r'name="stash_ticket" value="([^"]+)"')
COOKIE_RE = re.compile(r"^([^=;]+)=([^;]*)")


# -- the instance ------------------------------------------------------------------------------
def instance_env(instance: Path, database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "ICLI_ENV": "development",
        "ICLI_INSTANCE": str(instance),
        "ICLI_DATABASE_URL": database_url,
        "ICLI_REDIS_URL": redis_url,
        "ICLI_KEYRING": str(instance / "keyring.json"),
        "ICLI_SECRET_KEY": secrets.token_urlsafe(32),
        "ICLI_LINK_KEY": secrets.token_urlsafe(32),
        "ICLI_LOG_LEVEL": "WARNING",
    }


def seed(env: dict[str, str], sheets: int) -> list[int]:
    """A referent of a structure and ``sheets`` drafts of theirs, each with complete content."""
    settings = load_settings(env)
    engine = make_engine(settings)
    upgrade(engine)
    sessions = make_session_factory(engine)
    keyring = load_keyring(settings, sessions)
    use_fast_hashing(False)  # the login is not measured; the account is as in production
    with sessions() as session:
        ensure_reference_defaults(session)
        _north, _south, structures = reference_data(session)
        structure = structures["ssd"]
        referent = create_user(session, email=REFERENT, full_name="Référente Bench",
                               password=PASSWORD,
                               role=RoleSpec("referent", structure_id=structure.id))
        vault = Vault(session, keyring, audit.CLI)
        ids = [make_sheet(session, vault, structure, canary_identity(n),
                          author_id=referent.id).id for n in range(sheets)]
        session.commit()
        audit.seal(session, keyring)
        session.commit()
    engine.dispose()
    return ids


# -- servers ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def memory(self) -> tuple[dict, list[dict]]:
        """The master's and each worker's smaps_rollup figures, in MiB."""
        master = psutil.Process(self.process.pid)
        return _rollup(master.pid), [_rollup(c.pid) for c in master.children()]


def _rollup(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "uss": fields["Private_Clean"] + fields["Private_Dirty"]}


def start_gunicorn(app: str, env: dict[str, str], workers: int, log: Path,
                   extra: tuple[str, ...] = ()) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--threads", str(THREADS), "--preload",
               "--no-control-socket", "--timeout", "120", *extra, app]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = Server(process, port, log)
    deadline = time.monotonic() + 180  # the language model loads before the fork
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{app} did not start:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            if len(psutil.Process(process.pid).children()) >= workers:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise SystemExit(f"{app} did not answer within 180 s")


# -- HTTP clients ------------------------------------------------------------------------------
class Client:
    """One browser: a keep-alive connection and its cookies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.tokens: dict[str, dict[str, str]] = {}  # CSRF token and stash ticket, per form
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, form: dict | None = None,
                keep_cookies: bool = True) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                content = response.read().decode()
                break
            except (http.client.HTTPException, OSError):
                self.connection.close()  # closed by the server between two requests
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                             timeout=60)
                if attempt == 2:
                    raise
        for header in (response.headers.get_all("Set-Cookie") or []) if keep_cookies else []:
            match = COOKIE_RE.match(header)
            if match:
                self.cookies[match.group(1)] = match.group(2)
        return response.status, content

    def form_token(self, path: str) -> dict[str, str]:
        status, page = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status}")
        tokens = {"csrf_token": CSRF_RE.search(page).group(1)}
        ticket = TICKET_RE.search(page)
        if ticket:
            tokens["stash_ticket"] = ticket.group(1)
        return tokens

    def login(self) -> None:
        form = {**self.form_token("/connexion"), "email": REFERENT, "password": PASSWORD}
        status, _ = self.request("POST", "/connexion", form)
        if status != 302:
            raise RuntimeError(f"login refused ({status})")


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def drive(clients: list[Client], action, seconds: float) -> Result:
    """Every client runs ``action(client, n)`` in a loop: a warm-up, then ``seconds``
    measured; each iteration's latency is recorded, a failed one counted."""
    result = Result()
    lock = threading.Lock()
    start = time.monotonic() + WARM_UP
    stop = start + seconds

    def loop(index: int, client: Client) -> None:
        n = 0
        while (now := time.monotonic()) < stop:
            n += 1
            try:
                ok = action(client, index, n)
            except Exception:
                ok = False
            took = time.monotonic() - now
            if now >= start:
                with lock:
                    if ok:
                        result.latencies.append(took)
                    else:
                        result.errors += 1

    threads = [threading.Thread(target=loop, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = seconds
    return result


def app_scenarios(sheet_ids: list[int], forms: list[dict[str, str]]):
    def save(client: Client, index: int, n: int) -> bool:
        path = f"/fiches/{sheet_ids[index]}/modifier"
        if path not in client.tokens:  # once per session, as a browser showing the form
            client.tokens[path] = client.form_token(path)
        form = {**forms[index], "parcours": f"{forms[index]['parcours']} Étape {n}."}
        # The session cookie the save sets carries its flash message (« Brouillon
        # enregistré… »), which the page it redirects to takes out again: a browser's next
        # save sends the cookie it had before. Kept, the messages would pile up in the cookie
        # (tens of KB after a few hundred saves), and every request would parse them.
        status, _ = client.request("POST", path, {**client.tokens[path], "action": "save",
                                                  **form}, keep_cookies=False)
        return status == 302

    def view(client: Client, index: int, n: int) -> bool:
        status, _ = client.request("GET", f"/fiches/{sheet_ids[index]}")
        return status == 200

    return {"save": save, "view": view}


def bare_scenarios(forms: list[dict[str, str]]):
    def save(client: Client, index: int, n: int) -> bool:
        if "/fiche" not in client.tokens:
            client.tokens["/fiche"] = client.form_token("/fiche")
        form = {**forms[index], "parcours": f"{forms[index]['parcours']} Étape {n}."}
        status, _ = client.request("POST", "/fiche", {**client.tokens["/fiche"],
                                                      "action": "save", **form})
        return status == 302

    def view(client: Client, index: int, n: int) -> bool:
        status, _ = client.request("GET", "/fiche")
        return status == 200

    return {"save": save, "view": view}


# -- the run ---------------------------------------------------------------------------------
def measure(server: Server, scenarios: dict, counts: list[int], seconds: float,
            login: bool) -> dict[tuple[str, int], Result]:
    results = {}
    for count in counts:
        clients = [Client(server.port) for _ in range(count)]
        if login:
            for client in clients:
                client.login()
        for name, action in scenarios.items():
            results[name, count] = drive(clients, action, seconds)
        for client in clients:
            client.connection.close()
    return results


def line(label: str, result: Result, base: Result | None) -> str:
    ratio = (f"{result.throughput / base.throughput:5.2f}×  "
             f"{result.percentile(99) / base.percentile(99):5.2f}×") if base else " " * 15
    errors = f"  ({result.errors} failed)" if result.errors else ""
    return (f"{label:<28} {result.throughput:8.1f} {result.percentile(50):8.1f} "
            f"{result.percentile(99):8.1f}  {ratio}{errors}")


def show_memory(label: str, server: Server) -> None:
    master, workers = server.memory()
    own = ", ".join(f"USS {w['uss']:.0f} / PSS {w['pss']:.0f} / RSS {w['rss']:.0f}"
                    for w in workers)
    print(f"  memory {label}: master RSS {master['rss']:.0f} MiB (USS {master['uss']:.0f}); "
          f"each worker (MiB): {own}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", default="8,32")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (its maintenance database)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--redis", default=os.environ.get("ICLI_REDIS_URL",
                                                          "redis://127.0.0.1:6379/9"))
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    most = max(counts)
    identities = [canary_identity(n) for n in range(most)]
    forms = [sheet_form(demo_values(n), identity) for n, identity in enumerate(identities)]
    work = Path(tempfile.mkdtemp(prefix="icli-bench-intake-"))
    print(f"bench/intake.py {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}; {args.seconds:g} s "
          f"per measure after {WARM_UP:g} s of warm-up, clients {counts}, gunicorn --threads "
          f"{THREADS} --preload")
    try:
        sizes = {name: 5000 if len(value) > 100 else 200 for name, value in forms[0].items()}
        bare_env = {"BARE_FORM_FIELDS": json.dumps(sizes),
                    "BARE_FORM_SECRET": secrets.token_urlsafe(32)}
        bare = start_gunicorn("bare_form:app", bare_env, 2, work / "bare.log",
                              ("--pythonpath", str(ROOT / "bench")))
        try:
            baseline = measure(bare, bare_scenarios(forms), counts, args.seconds, login=False)
            show_memory("bare app", bare)
        finally:
            bare.stop()
        header = (f"{'':<28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  "
                  f"{'÷ bare':>6}  {'p99 ÷':>6}")
        print(header)
        for (name, count), result in baseline.items():
            print(line(f"bare {name} ×{count}", result, None))
        databases = [] if args.no_sqlite else [("sqlite", None)]
        if args.postgres:
            databases.append(("postgresql", args.postgres))
        for database, server_url in databases:
            run_database(database, server_url, work, args, counts, forms, baseline)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


def run_database(database: str, server_url: str | None, work: Path, args, counts: list[int],
                 forms: list[dict[str, str]], baseline: dict) -> None:
    instance = work / database
    instance.mkdir()
    if server_url is None:
        url = f"sqlite:///{instance / 'bench.sqlite3'}"
    else:
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE}"))
            conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
        url = urlsplit(server_url)._replace(path=f"/{PG_DATABASE}").geturl()
    env = instance_env(instance, url, args.redis)
    try:
        sheet_ids = seed(env, max(counts))
        scenarios = app_scenarios(sheet_ids, forms)
        app = start_gunicorn("intake.wsgi:app", env, 2, work / f"{database}.log")
        try:
            results = measure(app, scenarios, counts, args.seconds, login=True)
            show_memory(f"app on {database}", app)
        finally:
            app.stop()
        for (name, count), result in results.items():
            print(line(f"{database} {name} ×{count}", result, baseline[name, count]))
        if server_url is not None or args.no_sqlite or not args.postgres:
            single = start_gunicorn("intake.wsgi:app", env, 1, work / f"{database}-1.log")
            try:
                one = measure(single, scenarios, [min(counts)], args.seconds, login=True)
            finally:
                single.stop()
            for name in scenarios:
                two, alone = results[name, min(counts)], one[name, min(counts)]
                print(line(f"{database} {name} ×{min(counts)}, 1 worker", alone, None)
                      + f"   2 workers ÷ 1: {two.throughput / alone.throughput:.2f}×")
    finally:
        if server_url is not None:
            admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
            admin.dispose()


if __name__ == "__main__":
    main()
