"""Helpers shared by test modules: plain functions, classes and constants.

Fixtures live in a conftest.py (``tests/conftest.py``, or ``tests/functional/conftest.py``
for those only functional tests use). No test module imports from another test module: a
helper two modules need moves here.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner
from docx import Document
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import MetaData, func, select, update

from generator import runtime
from generator.jobs import AllowlistedJob
from generator.worker import DocumentWorker
from shared.db import Base, make_session_factory, utcnow
from shared.domain import audit, meetings, retention
from shared.domain.meetings import ActionInput, create_meeting, record_avis
from shared.domain.reference import ensure_reference_defaults
from shared.models import Beneficiary, Decision, GeneratedDocument, Meeting
from shared.processes import die_with_parent
from shared.queue import DOCUMENTS_QUEUE
from tests.factories import PASSWORD, PLANNED_ON, remember_second_factor, second_factor_code


class InProcessWorker(SimpleWorker):
    """RQ's in-process worker with the real worker's short wait on its commands channel: a
    burst run ends as soon as its queue is empty, not up to a minute later."""

    subscribe = DocumentWorker.subscribe


def run_queue(settings, redis, queue_name: str = DOCUMENTS_QUEUE) -> None:
    """Run every job waiting on ``queue_name`` in this process, as the worker would; RQ's
    signal handlers are taken out again afterwards (a later stop signal must reach pytest)."""
    runtime.init(settings)
    queue = Queue(queue_name, connection=redis, serializer=JSONSerializer)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        InProcessWorker([queue], connection=redis, serializer=JSONSerializer,
                        job_class=AllowlistedJob).work(burst=True)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


@dataclass
class CliResult:
    """What a test reads of an ``icli`` run, whether in this process or in its own."""

    returncode: int
    stdout: str
    stderr: str


def icli(test_env, *args, check: bool = True, process: bool = False) -> CliResult:
    """``icli ARGS`` on the test instance: in this process through Click's CliRunner (the
    usual case, no interpreter start), or as its own process (``process=True``) where the test
    is about the process itself (its start, its signals, what it leaves behind)."""
    if process:
        ran = subprocess.run([sys.executable, "-m", "intake.cli", *args], capture_output=True,
                             text=True, env={**os.environ, **test_env}, timeout=120)
        result = CliResult(ran.returncode, ran.stdout, ran.stderr)
    else:
        from intake.cli import main

        ran = CliRunner(env=test_env).invoke(main, list(args), catch_exceptions=False)
        result = CliResult(ran.exit_code, ran.stdout, ran.stderr)
    if check:
        assert result.returncode == 0, result.stderr
    return result


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, url: str) -> str:
    page = client.get(url)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


SECOND_FACTOR_CODE_PAGE = "/connexion/code"
SECOND_FACTOR_ENROLMENT_PAGE = "/connexion/activation-second-facteur"
ENROLMENT_SECRET_RE = re.compile(r'<p class="secret"><code>([A-Z2-7]+)</code></p>')


def sign_in(client, email: str, password: str, next_path: str = ""):
    """The login form, then the second factor as its owner would go through it: the code
    from the account's application, or, for an account that must enrol, the secret read
    from the enrolment page and its first code. Returns the last response (after an
    enrolment: the page of recovery codes, 200)."""
    url = f"/connexion?next={next_path}" if next_path else "/connexion"
    response = client.post(url, data={"csrf_token": csrf_token(client, "/connexion"),
                                      "email": email, "password": password})
    location = response.headers.get("Location", "") if response.status_code == 302 else ""
    if location == SECOND_FACTOR_CODE_PAGE:
        return client.post(location, data={"csrf_token": csrf_token(client, location),
                                           "code": second_factor_code(email)})
    if location == SECOND_FACTOR_ENROLMENT_PAGE:
        page = client.get(location).get_data(as_text=True)
        remember_second_factor(email, ENROLMENT_SECRET_RE.search(page).group(1))
        return client.post(location, data={"csrf_token": CSRF_RE.search(page).group(1),
                                           "code": second_factor_code(email)})
    return response


def logged_in(app, email: str):
    """A test client with that account logged in through the real login form."""
    client = app.test_client()
    response = sign_in(client, email, PASSWORD)
    assert response.status_code == 302 or "Second facteur activé" in response.get_data(
        as_text=True), email
    return client


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def start_worker(env: dict[str, str], redis, log_path: Path):
    """Start ``python -m generator`` with ``env``; returns once it is registered with Redis.

    Every process a test starts gets ``die_with_parent``: a test run killed halfway leaves
    no worker behind to take the next run's jobs from the same Redis database."""
    import subprocess
    import sys

    from rq import Worker

    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "generator"],
                                   env={**os.environ, **env}, stdout=log,
                                   stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    process.log_path = log_path
    # Ready once registered with Redis (after its keyring, and LibreOffice when installed).
    wait_for(lambda: process.poll() is not None or Worker.all(connection=redis), timeout=180)
    assert process.poll() is None, log_path.read_text()
    return process


def stop_worker(process) -> bool:
    """SIGTERM, then what ``reap`` does; returns whether the worker stopped by itself."""
    process.terminate()
    return reap(process, 30)


def metric_sample(exposition: str, name: str, **labels) -> float | None:
    """The value of the sample ``name{labels}`` in a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return None


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 (a server of the tests, on localhost)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - localhost
            return response.status == 200
    except OSError:
        return False


def reap(process, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``process`` to exit; past that, SIGKILL it and every
    process it started, and reap it. Returns whether it exited by itself (a test asserts it
    afterwards). Every test that starts a process ends with this, in a ``finally``: a process
    that outlives its test breaks later ones (ResourceWarning "subprocess … is still
    running", an unknown zombie among pytest's children)."""
    import subprocess

    import psutil

    try:
        process.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        pass
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    process.kill()
    for descendant in descendants:
        try:
            descendant.kill()
        except psutil.Error:
            continue
    process.wait()
    psutil.wait_procs(descendants, timeout=10)
    return False


def empty_database(engine) -> None:
    """Every table emptied, the reference data seeded again: the state a test starts from."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    seed_reference_data(engine)


def seed_reference_data(engine) -> None:
    with make_session_factory(engine)() as session:
        ensure_reference_defaults(session)
        session.commit()


def purge(db_session, vault, sheet) -> None:
    """The retention crypto-shreds the sheet's person (no activity for longer than kept)."""
    db_session.execute(update(Beneficiary).where(Beneficiary.id == sheet.beneficiary_id)
                       .values(last_activity_at=retention.months_ago(utcnow(), 25)))
    retention.run(db_session, vault.keyring, audit.CLI, retention.Policy())
    db_session.expire_all()
    assert sheet.beneficiary.purged_at is not None


class AuthActions:
    def __init__(self, client) -> None:
        self.client = client

    def login(self, email: str, password: str):
        return sign_in(self.client, email, password)

    def post(self, url: str, data: dict | None = None, form_url: str | None = None):
        """Post a form with the CSRF token read from ``form_url`` (default: the home page)."""
        token = csrf_token(self.client, form_url or "/")
        return self.client.post(url, data={"csrf_token": token, **(data or {})})


# -- the web app: logged-in clients, forms, flashed messages ---------------------------------


def client_as(app, role):
    """A test client for ``role`` (``anonymous``, ``referent``, ``other_facilitator``…): the
    account ``<role>@test.invalid`` of the ``world`` fixture, logged in."""
    if role == "anonymous":
        return app.test_client()
    return logged_in(app, f"{role.replace('_', '.')}@test.invalid")


def post(client, url, data=None, form_url=None):
    """Post a form with a fresh CSRF token; returns the page it lands on."""
    token = csrf_token(client, form_url or url)
    return client.post(url, data={"csrf_token": token, **(data or {})},
                       follow_redirects=True)


def flash_text(response) -> str:
    """The flashed messages of a page, as the HTML has them (escaped)."""
    return " ".join(re.findall(r'class="flash [^"]*"[^>]*>([^<]*)<', response.get_data(
        as_text=True)))


def reload(db_session, model, id_):
    db_session.expire_all()
    return db_session.get(model, id_)


def create_account(client, **fields):
    """The administrator's new-account form, posted."""
    token = csrf_token(client, "/admin/utilisateurs/nouveau")
    return client.post("/admin/utilisateurs/nouveau", data={"csrf_token": token, **fields})


# -- situation sheets through the referent's forms -------------------------------------------


def identity_form(identity) -> dict:
    return {k: getattr(identity, k) for k in (
        "nom", "prenom", "nom_naissance", "date_naissance", "numero_caf",
        "identifiant_france_travail", "adresse", "code_postal", "commune", "telephone",
        "email")}


def sheet_form(values: dict, identity) -> dict:
    """The edit form's fields for ``values`` (as the browser would post them)."""
    data = identity_form(identity)
    for name, value in values.items():
        if name == "freins":
            data.update({f"frein__{code}": level for code, level in value.items()})
        elif name == "actions":
            for row, entry in enumerate(value):
                data.update({f"action_{row}_{k}": v for k, v in entry.items()})
        elif isinstance(value, int):
            data[name] = str(value)
        else:
            data[name] = value
    return data


def create_draft(client, identity):
    token = csrf_token(client, "/fiches/nouvelle")
    response = client.post("/fiches/nouvelle", data={"csrf_token": token,
                                                     **identity_form(identity)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(response.headers["Location"].split("/")[2])


def post_sheet(client, sheet_id, data, action="save"):
    """The edit form posted with one of its buttons (``action=None``: a finding's button)."""
    token = csrf_token(client, f"/fiches/{sheet_id}/modifier")
    buttons = {"action": action} if action else {}
    return client.post(f"/fiches/{sheet_id}/modifier",
                       data={"csrf_token": token, **buttons, **data})


# -- sessions and avis, on the domain functions ----------------------------------------------

# Who signs a formal decision for the Département.
DGA = "DGA Solidarités, par délégation"


def hold(db_session, meeting) -> None:
    """The session is held (its documents and attendance are not what is tested here)."""
    meeting.state = "tenue"
    db_session.flush()


def give_avis(db_session, vault, meeting, sheet, motivation, *, come_back_on=None,
              actions=()) -> Decision:
    item = next(i for i in meeting.items if i.sheet_id == sheet.id and not i.outcome)
    return record_avis(db_session, vault, meeting, item.id, avis="maintien",
                       avis_codes={"maintien"}, motivation=motivation, actions=list(actions),
                       come_back_on=come_back_on, formal_decision_by="")


def close(db_session, vault, meeting) -> None:
    """Minutes signed by both directors (tested elsewhere), then the session closed."""
    meeting.state = "pv_signe"
    meetings.transition(db_session, vault, meeting, "close")
    db_session.commit()


def month_sessions(db_session, north) -> dict[str, Meeting]:
    days = {"janvier": datetime(2027, 1, 12, 14), "fevrier": datetime(2027, 2, 9, 14),
            "mars": datetime(2027, 3, 9, 14), "avril": datetime(2027, 4, 13, 14)}
    created = {name: create_meeting(db_session, north, day, "Salle 2", today=PLANNED_ON)
               for name, day in days.items()}
    db_session.commit()
    return created


def examine_every_situation(db_session, vault, meeting) -> None:
    """The session held: every member present, an avis with one action on each situation."""
    for row in meeting.members:
        row.attendance = "present"
    meeting.state = "tenue"
    for item in [i for i in meeting.items if i.sheet_id]:
        record_avis(db_session, vault, meeting, item.id, avis="maintien",
                    avis_codes={"maintien"}, motivation="Poursuivre l'accompagnement.",
                    actions=[ActionInput("Atelier CV", None, None)], come_back_on=None,
                    formal_decision_by="")
    db_session.commit()


# -- documents: asked for through the forms, read back ---------------------------------------


def request_agenda(client, meeting_id):
    token = csrf_token(client, f"/seances/{meeting_id}")
    return client.post(f"/seances/{meeting_id}/documents/agenda", data={"csrf_token": token})


def generate(client, meeting_id, kind, sheet_id=None, rebuild=False):
    """Ask for a document through the session page, wait for the worker, download it."""
    url = f"/seances/{meeting_id}"
    data = {"csrf_token": csrf_token(client, url)}
    if sheet_id:
        data["sheet_id"] = str(sheet_id)
    if rebuild:
        data["rebuild"] = "1"
    assert client.post(f"{url}/documents/{kind}", data=data).status_code == 302
    query = f"?fiche={sheet_id}" if sheet_id else ""

    def finished():
        status = client.get(f"{url}/documents/{kind}/statut{query}").get_json()
        return status if status["status"] in ("done", "failed") else None

    status = wait_for(finished, timeout=120)
    assert status["status"] == "done", status
    response = client.get(status["download"])
    assert response.status_code == 200
    return response.data


def step(client, meeting_id, action, data=None):
    """A transition of the session's state through its page."""
    url = f"/seances/{meeting_id}"
    client.post(f"{url}/etat/{action}", data={"csrf_token": csrf_token(client, url),
                                              **(data or {})})


def minutes_docx(facilitator, db_session, vault, settings, redis, meeting):
    """The minutes of ``meeting`` (avis saisis), built by the real worker code."""
    meeting.state = "avis_saisis"
    db_session.commit()
    url = f"/seances/{meeting.id}"
    post(facilitator, f"{url}/documents/minutes", form_url=url)
    run_queue(settings, redis)
    db_session.expire_all()
    stored = db_session.scalars(select(GeneratedDocument).where(
        GeneratedDocument.meeting_id == meeting.id, GeneratedDocument.kind == "minutes")
        .order_by(GeneratedDocument.id.desc())).first()
    return vault.open_blob(stored, "body")


def docx_xml(data: bytes) -> str:
    """Every XML part of a .docx, relationships and properties included."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(archive.read(n).decode("utf-8") for n in archive.namelist()
                       if n.endswith((".xml", ".rels")))


def _paragraph_texts(container) -> list[str]:
    texts = [p.text for p in container.paragraphs]
    for table in container.tables:
        for row in table.rows:
            for cell in row.cells:
                texts.extend(_paragraph_texts(cell))
    return texts


def document_text(data: bytes) -> str:
    """Body, tables, headers and footers, as python-docx reads them (it must parse the file)."""
    document = Document(io.BytesIO(data))
    parts = _paragraph_texts(document)
    for section in document.sections:
        parts.extend(_paragraph_texts(section.header) + _paragraph_texts(section.footer))
    return "\n".join(parts)


def pdf_text(data: bytes) -> str:
    """The text of a PDF, by poppler's pdftotext."""
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True,
                          check=True).stdout.decode()


# -- Word templates: the administrator's upload, files to upload -----------------------------

TEMPLATES_PAGE = "/admin/modeles"


def upload(client, kind: str, data: bytes, filename: str = "modele.docx", **options):
    """A template uploaded through the administrator's form."""
    token = csrf_token(client, TEMPLATES_PAGE)
    return client.post(f"{TEMPLATES_PAGE}/{kind}/envoyer", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
                       **options)


def docx_with(*paragraphs: str) -> bytes:
    """A new .docx holding ``paragraphs``."""
    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_with(source: bytes, name: str, transform) -> bytes:
    """A copy of the zip ``source`` (a .docx) whose member ``name`` is ``transform(data)``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as original, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as patched:
        for item in original.infolist():
            data = original.read(item.filename)
            patched.writestr(item, transform(data) if item.filename == name else data)
    return out.getvalue()


def count(session, model) -> int:
    """How many rows ``model``'s table holds."""
    return session.scalar(select(func.count()).select_from(model))


# -- leak scans: every byte a backend holds --------------------------------------------------


def read_elsewhere(paths) -> bytes:
    """Read files in a child process: closing a descriptor of the SQLite file in this process
    would drop the POSIX locks of the test's own connections (and let another process delete
    the WAL under them)."""
    paths = [str(p) for p in paths]
    return subprocess.run(["cat", *paths], capture_output=True, check=True).stdout if paths else b""


def database_dump(engine, settings) -> bytes:
    """Every byte the database holds: the files for SQLite (with WAL), all rows otherwise."""
    if settings.is_sqlite:
        path = settings.database_url.removeprefix("sqlite:///")
        return read_elsewhere(p for p in (path, path + "-wal", path + "-shm")
                              if os.path.exists(p))
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        rows = [repr(tuple(r)) for t in metadata.sorted_tables for r in conn.execute(t.select())]
    return "\n".join(rows).encode()


def redis_dump(redis) -> bytes:
    return b"".join((redis.dump(k) or b"") + k for k in redis.keys("*"))


# -- keyring files ---------------------------------------------------------------------------


def file_keys(path: Path) -> list[str]:
    """Every key of a keyring file, as its base64."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [item["key"] for entry in data["chains"].values()
            for item in entry["versions"].values()]


def assert_no_key_material(message: str, keys: list[str]) -> None:
    for key in keys:
        raw = base64.b64decode(key)
        assert raw.hex()[:16] not in message
        for start in range(len(key) - 8):  # no 8-character run of any key's base64
            assert key[start:start + 8] not in message


def replaced(source: Path, destination: Path, chain: str) -> Path:
    """A copy of ``source`` whose ``chain`` v1 is another random key (same version)."""
    data = json.loads(source.read_text(encoding="utf-8"))
    data["chains"][chain]["versions"]["1"]["key"] = base64.b64encode(
        secrets.token_bytes(32)).decode()
    temporary = destination.with_suffix(".tmp")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(destination)  # as an operator's copy would: a new file
    return destination


# -- the OpenID Connect provider of the tests (tests/oidc_provider.py) -----------------------

OIDC_CLIENT_ID = "icli-tests"
OIDC_CLIENT_SECRET = "a-client-secret-for-the-tests-only"
OIDC_SECOND_FACTOR_ACR = "https://proconnect.gouv.fr/assurance/self-asserted-2fa"


def start_oidc_provider():
    """``python -m tests.oidc_provider`` on 127.0.0.1: returns the process and its issuer
    (the address it printed once it listens). It accepts redirections to any local port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.oidc_provider", OIDC_CLIENT_ID, OIDC_CLIENT_SECRET,
         "http://127.0.0.1:"], stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    issuer = process.stdout.readline().strip()
    assert issuer.startswith("http://127.0.0.1:"), "the test OpenID Connect provider did not start"
    return process, issuer


def oidc_environment(issuer: str) -> dict[str, str]:
    """The settings of an instance whose users may sign in through the test provider (named
    « test »), as ProConnect would be configured: eidas1, or its two-factor acr."""
    return {
        "ICLI_OIDC_PROVIDERS": "test",
        "ICLI_OIDC_TEST_LABEL": "ProConnect (test)",
        "ICLI_OIDC_TEST_ISSUER": issuer,
        "ICLI_OIDC_TEST_CLIENT_ID": OIDC_CLIENT_ID,
        "ICLI_OIDC_TEST_CLIENT_SECRET": OIDC_CLIENT_SECRET,
        "ICLI_OIDC_TEST_SCOPES": "openid email siret",
        "ICLI_OIDC_TEST_ACR_VALUES": f"eidas1 {OIDC_SECOND_FACTOR_ACR}",
        "ICLI_OIDC_TEST_SECOND_FACTOR_ACR": OIDC_SECOND_FACTOR_ACR,
        "ICLI_OIDC_TEST_STRUCTURES": "*",
    }
