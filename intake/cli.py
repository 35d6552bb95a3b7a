"""The ``icli`` command: run the instance, migrate, manage users, seed a demo, check integrity."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from shared.config import ConfigError, Settings, load_settings, worker_environment
from shared.crypto import CryptoError
from shared.db import make_engine, make_session_factory
from shared.domain import audit
from shared.domain.rotation import DEFAULT_BATCH
from shared.keys import ensure_keyring, load_keyring
from shared.models.user import ROLES

DEFAULT_PORT = 8000
WORKER_COMMAND = [sys.executable, "-m", "generator"]
_PR_SET_PDEATHSIG = 1


def _settings(*, worker: bool = False) -> Settings:
    """``worker``: the settings of a worker (no session secret read, nor required)."""
    try:
        return load_settings(worker=worker)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Children get SIGTERM if `icli run` dies, even by SIGKILL: nothing is left behind."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _outside_the_terminal_group() -> None:  # pragma: no cover - runs in the child
    """Bundled Redis: Ctrl-C in a terminal signals its whole foreground process group at
    once; out of it, Redis is stopped last, after the worker and the web app that use it."""
    os.setpgrp()
    _die_with_parent()


def _spawn(args: list[str]) -> subprocess.Popen:
    # The worker never gets the session secret: with it, any user's cookie could be forged.
    env = worker_environment() if args == WORKER_COMMAND else None
    return subprocess.Popen(args, preexec_fn=_die_with_parent, env=env)


def _keyring(settings: Settings):
    """The keyring, compared with the fingerprints the database recorded before any use (and
    at every reload): a wrong keyring stops the command before it writes anything."""
    try:
        return load_keyring(settings, make_session_factory(make_engine(settings)))
    except (ConfigError, CryptoError) as exc:
        raise click.ClickException(str(exc)) from None


def _ensure_keyring(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        ensure_keyring(settings, engine)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


@contextlib.contextmanager
def _session(settings: Settings) -> Iterator:
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@click.group()
def main() -> None:
    """ICL-I Seine-Saint-Denis: situation sheets, sessions and their documents."""


# -- database ---------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations up to the latest version."""
    settings = _settings()
    _upgrade(settings)
    click.echo("database is up to date")


def _upgrade(settings: Settings) -> None:
    """Migrations, then the default reference data of kinds that have none."""
    from shared.domain.reference import ensure_reference_defaults
    from shared.migrate import upgrade

    engine = make_engine(settings)
    try:
        upgrade(engine)
        with make_session_factory(engine)() as session:
            ensure_reference_defaults(session)
            session.commit()
    finally:
        engine.dispose()


# -- running ------------------------------------------------------------------
def _prepare(settings: Settings) -> None:
    """First run: keyring (development only), schema, demo data when the database is empty."""
    _ensure_keyring(settings)
    _upgrade(settings)
    from shared.demo import database_is_empty

    with _session(settings) as session:
        empty = database_is_empty(session)
    if empty:
        click.echo("Empty database: seeding demo data (synthetic people only).")
        _seed_demo(settings, password=None, people_file=None, sheets=12)


def _start_bundled_redis(settings: Settings) -> subprocess.Popen | None:
    from shared.redis_server import bundled_redis_running, start_bundled_redis

    if not settings.uses_bundled_redis or bundled_redis_running(settings):
        return None
    return start_bundled_redis(settings.bundled_redis_socket, settings.instance / "redis",
                               preexec_fn=_outside_the_terminal_group)


def _gunicorn_args(port: int, host: str = "127.0.0.1") -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", "2",
            "--threads", "4", "--access-logfile", "-",
            "--access-logformat", '%(h)s "%(m)s %(U)s" %(s)s %(M)sms',  # no query strings
            "intake.wsgi:app"]


@main.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="HTTP port of the web app.")
def run(port: int) -> None:
    """Everything on one machine: Redis (bundled), one worker and the web app."""
    settings = _settings()
    _prepare(settings)

    def started() -> None:
        click.echo(f"\nICL-I is running on http://127.0.0.1:{port}  (Ctrl-C to stop)")
        _print_accounts(settings)

    _supervise(settings, [WORKER_COMMAND, _gunicorn_args(port)], started)


def _supervise(settings: Settings, commands: list[list[str]],
               started: Callable[[], None] | None = None) -> None:
    """The bundled Redis (when used and not running yet) and ``commands``, until SIGTERM or
    Ctrl-C, or until one of them stops: then every other one is stopped too, Redis last, and
    the command fails (a web app that could not bind its port, a Redis that died)."""
    stopping = False

    def stop(_signum=None, _frame=None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    processes: list[subprocess.Popen] = []
    redis_process = None
    try:
        redis_process = _start_bundled_redis(settings)
        for command in commands:
            processes.append(_spawn(command))
        if started is not None:
            started()
        watched = [*processes, *([redis_process] if redis_process else [])]
        while not stopping and all(p.poll() is None for p in watched):
            time.sleep(0.2)
    finally:
        if redis_process is not None:
            processes.append(redis_process)  # stopped last: the others use it
        _stop_all(processes)
    if not stopping:
        raise click.ClickException("a process of the instance stopped; everything was shut down")


def _stop_all(processes: list[subprocess.Popen], timeout: float = 20) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _print_accounts(settings: Settings) -> None:
    from sqlalchemy import select

    from shared.models import User

    with _session(settings) as session:
        accounts = session.scalars(select(User).where(User.email.like("%@icli.example"))).all()
        if accounts:
            click.echo("Demo accounts (password printed when the demo was seeded):")
            for user in accounts:
                click.echo(f"  {user.email:32} {', '.join(user.role_labels)}")


@main.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def web(port: int, host: str) -> None:
    """The web app alone (gunicorn), with the bundled Redis when it is used."""
    settings = _settings()
    _ensure_keyring(settings)
    _supervise(settings, [_gunicorn_args(port, host)])


@main.command()
def worker() -> None:
    """The document worker alone (python -m generator), with the bundled Redis when used."""
    settings = _settings(worker=True)  # production: the worker starts without the secret
    _ensure_keyring(settings)
    _supervise(settings, [WORKER_COMMAND])


# -- users ----------------------------------------------------------------------
@main.group()
def users() -> None:
    """Accounts."""


@contextlib.contextmanager
def _audited_session() -> Iterator[tuple]:
    """A session and a `record(action, user)` writing an audit row as the CLI; commits."""
    settings = _settings()
    keyring = _keyring(settings)
    with _session(settings) as session:

        def record(action: str, user, **kwargs) -> None:
            audit.record(session, keyring, audit.CLI, action, object_type="users",
                         object_ids=[user.id], **kwargs)

        yield session, record
        session.commit()


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
@click.option("--role", type=click.Choice(sorted(ROLES)), required=True)
@click.option("--structure", "structure_id", type=int, help="Structure id (referents).")
@click.option("--circonscription", "circonscription_ids", type=int, multiple=True,
              help="Circonscription id (facilitators; repeat for several).")
@click.option("--manager", is_flag=True, help="Referent who sees all the structure's sheets.")
@click.option("--institution", type=click.Choice(["departement", "france_travail"]),
              help="Institution a director signs the minutes for.")
def users_create(email: str, full_name: str, role: str, structure_id: int | None,
                 circonscription_ids: tuple[int, ...], manager: bool,
                 institution: str | None) -> None:
    """Create an account with a one-time password, to change at first login."""
    from shared.domain.users import RoleSpec, create_user, generate_password
    from shared.errors import DomainError

    password = generate_password()
    with _audited_session() as (session, record):
        try:
            user = create_user(session, email=email, full_name=full_name, password=password,
                               role=RoleSpec(role, structure_id, circonscription_ids, manager,
                                             institution),
                               must_change_password=True)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        record("user_created", user, fields=[role])
    click.echo(f"created user {user.id}; one-time password (shown once): {password}")


def _user_by_email(session, email: str):
    from sqlalchemy import select

    from shared.domain.users import normalise_email
    from shared.models import User

    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise click.ClickException("no such user")
    return user


@users.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Deactivate an account (it can no longer log in)."""
    from shared.domain.users import set_active

    with _audited_session() as (session, record):
        user = _user_by_email(session, email)
        set_active(session, user, False)
        record("user_deactivated", user)
    click.echo(f"user {user.id} deactivated")


@users.command("reset")
@click.argument("email")
def users_reset(email: str) -> None:
    """Give an account a new one-time password and reactivate it."""
    from shared.domain.users import reset_password, set_active

    with _audited_session() as (session, record):
        user = _user_by_email(session, email)
        password = reset_password(session, user)
        set_active(session, user, True)
        record("password_reset", user)
    click.echo(f"user {user.id}: one-time password (shown once): {password}")


# -- sessions and documents ---------------------------------------------------------------
@main.group()
def sessions() -> None:
    """Sessions (séances)."""


@sessions.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for scripts.")
def sessions_list(as_json: bool) -> None:
    """Every session: id, circonscription, date, state, number of situations."""
    from sqlalchemy import select

    from shared.models import Meeting

    with _session(_settings()) as session:
        rows = [{"id": m.id, "circonscription": m.circonscription.name,
                 "date": m.starts_at.isoformat(timespec="minutes"), "state": m.state,
                 "situations": sum(1 for i in m.items if i.sheet_id)}
                for m in session.scalars(select(Meeting).order_by(Meeting.starts_at))]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:5}  {row['date']}  {row['circonscription']:20} "
                   f"{row['state']:20} {row['situations']} situation(s)")


@main.command()
@click.option("--session", "meeting_id", type=int, required=True, help="Session id.")
@click.option("--kind", type=click.Choice(["agenda", "dossier", "attendance", "minutes",
                                           "feedback"]), required=True)
@click.option("--sheet", "sheet_id", type=int, help="Sheet id (feedback only).")
@click.option("--pdf", is_flag=True, help="Write the PDF instead of the .docx.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False,
                                                                 path_type=Path))
@click.option("--timeout", default=120, show_default=True, help="Seconds to wait.")
def generate(meeting_id: int, kind: str, sheet_id: int | None, pdf: bool, out_path: Path,
             timeout: int) -> None:
    """Build a document through the queue, like the button, and write it to --out."""
    from rq import Worker

    from shared import outbox
    from shared.domain import documents
    from shared.encrypted import Vault
    from shared.errors import DomainError
    from shared.models import DocumentJob, Meeting, Sheet
    from shared.queue import DOCUMENTS_QUEUE, redis_connection

    _check_writable(out_path)  # before any work: nothing is built, audited, then lost
    settings = _settings()
    keyring = _keyring(settings)
    connection = redis_connection(settings)
    try:
        workers = [w for w in Worker.all(connection=connection)
                   if DOCUMENTS_QUEUE in w.queue_names()]
    except Exception:
        workers = []
    if not workers:
        raise click.ClickException("no worker is running: start `icli worker` first")
    with _session(settings) as session:
        meeting = session.get(Meeting, meeting_id)
        sheet = session.get(Sheet, sheet_id) if sheet_id else None
        if meeting is None or (sheet_id and sheet is None):
            raise click.ClickException("no such session or sheet")
        try:
            job = documents.request_document(session, meeting, kind, None, sheet,
                                             vault=Vault(session, keyring, audit.CLI))
        except DomainError as exc:
            session.commit()  # a refused dossier keeps its review counts and audit rows
            raise click.ClickException(exc.message) from None
        audit.record(session, keyring, audit.CLI, "document_requested",
                     object_type="document_jobs", object_ids=[job.id])
        session.commit()
        outbox.send_pending(session, connection, keyring, meeting.id)
        deadline = time.monotonic() + timeout
        while True:
            session.expire_all()
            job = session.get(DocumentJob, job.id)
            if job.status in ("done", "failed"):
                break
            if time.monotonic() > deadline:
                raise click.ClickException(f"the document was not built within {timeout} s "
                                           f"(state: {job.status}, step: {job.step})")
            time.sleep(0.3)
        if job.status == "failed":
            raise click.ClickException(f"generation failed: {job.error_message}")
        document = job.document
        if pdf and document.pdf_body is None:
            raise click.ClickException("PDF unavailable: LibreOffice is not installed on the "
                                       "worker's machine (the .docx is available)")
        audit.record(session, keyring, audit.CLI, "document_exported",
                     object_type="generated_documents", object_ids=[document.id])
        body = Vault(session, keyring, audit.CLI).open_blob(document, "pdf_body" if pdf else "body")
        session.commit()
    # Owner-only, never through a symlink: a plaintext document leaves the vault here.
    try:
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out_path}: {exc.strerror}") from None
    click.echo(f"wrote {out_path} ({len(body)} bytes, version {document.content_version})")


def _check_writable(path: Path) -> None:
    folder = path.parent
    if path.is_symlink():
        raise click.ClickException(f"--out {path}: a symbolic link is refused")
    if not folder.is_dir():
        raise click.ClickException(f"--out {path}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.ClickException(f"--out {path}: not writable")


# -- keys -------------------------------------------------------------------------
@main.group()
def keys() -> None:
    """Key material (the keyring file never enters the database)."""


@keys.command("worker-keyring")
@click.option("--out", "destination", required=True,
              type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True,
              help="Overwrite an existing file (after `keys add`: the worker reloads it).")
def keys_worker_keyring(destination: Path, replace: bool) -> None:
    """Write the keyring a worker gets: content, audit and jobs chains, never identity."""
    from shared.crypto import CryptoError, KeyRing

    settings = _settings()
    chains = settings.for_worker().key_chains
    try:
        written = KeyRing.export_chains(settings.keyring_path, destination, chains,
                                        replace=replace)
    except CryptoError as exc:
        raise click.ClickException(str(exc)) from None
    if not written:
        raise click.ClickException(f"{destination} exists already; not overwritten "
                                   "(--replace to update it)")
    click.echo(f"wrote {destination} (mode 0600): chains {', '.join(chains)}")


@contextlib.contextmanager
def _key_operation() -> Iterator:
    """Settings, keyring and a session for one key command; refusals become CLI errors."""
    from shared.crypto import CryptoError
    from shared.errors import DomainError

    settings = _settings()
    keyring = _keyring(settings)
    with _session(settings) as session:
        try:
            yield settings, keyring, session
        except DomainError as exc:
            session.rollback()
            raise click.ClickException(exc.message) from None
        except CryptoError as exc:
            session.rollback()
            raise click.ClickException(str(exc)) from None


CHAIN = click.option("--chain", required=True, help="identity, content, index, audit or jobs")


@keys.command("status")
@click.option("--json", "as_json", is_flag=True, help="The stable JSON form, for scripts.")
def keys_status(as_json: bool) -> None:
    """Every key version per chain: state, rows using it, fingerprint, live holders."""
    from shared.domain import rotation

    with _key_operation() as (_, keyring, session):
        report = rotation.status(session, keyring)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    names = {p["id"]: f"{p['kind']} pid {p['pid']} on {p['host']}" for p in report["processes"]}
    for chain, entry in report["chains"].items():
        click.echo(f"{chain} (primary v{entry['primary']})")
        for v in entry["versions"]:
            click.echo(f"  v{v['version']:<3} {v['state']:<9} rows {v['rows']:>8}  "
                       f"fp {v['fingerprint'] or '—':<16}  created {v['created_at'] or '—'}  "
                       f"held by {len(v['held_by'])} live process(es)")
            if v["state"] == "retired" and v["held_by"]:
                click.echo(f"    STILL HELD by {', '.join(names[p] for p in v['held_by'])}")
    click.echo(f"live processes: {len(report['processes'])}")
    for p in report["processes"]:
        click.echo(f"  {p['kind']:<6} pid {p['pid']} on {p['host']}, seen {p['seen_at']}")


@keys.command("add")
@CHAIN
def keys_add(chain: str) -> None:
    """Add a new version to a chain: every process loads it, nothing uses it yet."""
    from shared.domain import rotation

    with _key_operation() as (settings, keyring, session):
        version = rotation.add(session, settings.keyring_path, keyring, chain, audit.CLI)
        session.commit()
    click.echo(f"added {chain} v{version}; wait until every process holds it "
               f"(`icli keys status`), then `icli keys promote --chain {chain} "
               f"--version {version}`")


@keys.command("promote")
@CHAIN
@click.option("--version", "version", required=True, type=int)
def keys_promote(chain: str, version: int) -> None:
    """Make a version primary; refused while a live process does not hold it."""
    from shared.domain import rotation

    with _key_operation() as (settings, keyring, session):
        rotation.promote(session, settings.keyring_path, keyring, chain, version, audit.CLI)
        session.commit()
    click.echo(f"{chain} v{version} is primary; now `icli keys rotate --chain {chain}`")


@keys.command("rotate")
@click.option("--chain", "chains", multiple=True,
              help="identity, content or index (default: all three)")
@click.option("--batch", default=DEFAULT_BATCH, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--pause", default=0.0, show_default=True, type=click.FloatRange(0, 60),
              help="Seconds between batches, to spare a busy database.")
def keys_rotate(chains: tuple[str, ...], batch: int, pause: float) -> None:
    """Move every row to the primary version, in checkpointed batches; resumable."""
    from shared.domain import rotation
    from shared.errors import DomainError

    settings = _settings()
    keyring = _keyring(settings)
    engine = make_engine(settings)
    unfinished = []
    try:
        for chain in chains or rotation.ROTATED_CHAINS:
            started = time.monotonic()
            with click.progressbar(length=1, label=f"{chain}", show_pos=True,
                                   file=sys.stderr) as bar:
                def progress(done: int, total: int, bar=bar, started=started, chain=chain) -> None:
                    bar.length = max(total, 1)
                    bar.update(done - bar.pos)
                    rate = done / max(time.monotonic() - started, 1e-6)
                    bar.label = f"{chain} ({rate:,.0f} rows/s)"

                try:
                    result = rotation.rotate(make_session_factory(engine), keyring, chain,
                                             audit.CLI, batch=batch, pause=pause,
                                             progress=progress,
                                             index_bits=settings.index_bits)
                except DomainError as exc:
                    raise click.ClickException(exc.message) from None
            elapsed = time.monotonic() - started
            click.echo(f"{chain}: {result.rewrapped} row(s) moved to v{result.target_version} "
                       f"in {elapsed:.1f} s ({result.passes} pass(es))")
            if result.undecryptable:
                unfinished.append(f"{chain}: {len(result.undecryptable)} identity record(s) "
                                  "could not be decrypted and stay on their old version, ids "
                                  + ", ".join(map(str, result.undecryptable)))
    finally:
        engine.dispose()
    if unfinished:  # ids only: see `icli check` and the audit log for each failure
        raise click.ClickException("rotation incomplete; " + "; ".join(unfinished))


@keys.command("deep-reencrypt")
@click.option("--pseudonym", required=True, help="The person's pseudonym (never a name).")
def keys_deep_reencrypt(pseudonym: str) -> None:
    """Incident: re-encrypt one person's values under new data keys, old keys deleted."""
    from sqlalchemy import select

    from shared.domain import rotation
    from shared.models import Beneficiary

    with _key_operation() as (_, keyring, session):
        person = session.scalar(select(Beneficiary).where(Beneficiary.pseudonym == pseudonym))
        if person is None:
            raise click.ClickException("no person has this pseudonym")
        count = rotation.deep_reencrypt(session, keyring, person, audit.CLI)
        session.commit()
    click.echo(f"{count} value(s) re-encrypted under new data keys; the old keys are deleted")


@keys.command("retire")
@CHAIN
@click.option("--version", "version", required=True, type=int)
@click.option("--wait", "wait_seconds", default=90, show_default=True,
              type=click.IntRange(0, 3600),
              help="Seconds to wait until no live process holds the version any more.")
def keys_retire(chain: str, version: int, wait_seconds: int) -> None:
    """Remove a version nothing needs any more (verified first); succeed once no live
    process holds it."""
    from shared.domain import rotation

    with _key_operation() as (settings, keyring, session):
        verified = rotation.retire(session, settings.keyring_path, keyring, chain, version,
                                   audit.CLI)
        session.commit()
        holders = rotation.wait_until_released(session, chain, version, wait_seconds)
    if holders:
        raise click.ClickException(
            f"{chain} v{version} left the keyring file, but {len(holders)} live process(es) "
            f"still hold it after {wait_seconds} s: {'; '.join(holders)} (see `icli keys "
            "status`; restart them if they do not reload)")
    click.echo(f"{chain} v{version} retired ({verified} data key(s) verified without it) and "
               "held by no live process; backups made before this point can no longer be "
               "read with the keyring")


# -- audit ------------------------------------------------------------------------
@main.group("audit")
def audit_group() -> None:
    """The MAC-chained audit trail."""


@audit_group.command("verify")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A signed checkpoint to compare with (default: ICLI_AUDIT_CHECKPOINT_FILE).")
def audit_verify(checkpoint_file: Path | None) -> None:
    """Check the chain, and against the last checkpoint; name the first broken row and exit
    non-zero if it does not hold."""
    from shared import audit_checkpoint

    settings = _settings()
    keyring = _keyring(settings)
    configured = settings.audit_checkpoint_file
    if checkpoint_file is None and configured is not None and configured.is_file():
        checkpoint_file = configured
    with _session(settings) as session:
        if checkpoint_file is not None:  # first: it names a truncation best
            try:
                problem = audit_checkpoint.compare(
                    session, audit_checkpoint.read(checkpoint_file, keyring))
            except audit_checkpoint.CheckpointError as exc:
                raise click.ClickException(str(exc)) from None
            if problem:
                raise click.ClickException(f"audit chain broken against the checkpoint "
                                           f"{checkpoint_file}: {problem}")
        report = audit.verify_chain(session, keyring)
    if not report.ok:
        at = f" at {report.first_broken_at:%Y-%m-%d %H:%M:%S}" if report.first_broken_at else ""
        row = f"row id={report.first_broken_id}" if report.first_broken_id else "chain"
        raise click.ClickException(f"audit chain broken: {row}{at}: {report.reason} "
                                   f"({report.rows} row(s) checked)")
    for note in report.reanchored:
        click.echo(f"break repaired by an administrator's re-anchor: {note}")
    against = f", consistent with checkpoint {checkpoint_file}" if checkpoint_file else ""
    click.echo(f"audit chain verified: {report.rows} row(s){against}")


@audit_group.command("checkpoint")
@click.option("--out", "destination", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it (default: ICLI_AUDIT_CHECKPOINT_FILE).")
def audit_checkpoint_command(destination: Path | None) -> None:
    """Write a signed checkpoint of the chain's head (the worker also does, on a schedule)."""
    from shared import audit_checkpoint

    settings = _settings()
    destination = destination or settings.audit_checkpoint_file
    if destination is None:
        raise click.ClickException("set ICLI_AUDIT_CHECKPOINT_FILE or give --out")
    keyring = _keyring(settings)
    with _session(settings) as session:
        checkpoint = audit_checkpoint.take(session, keyring)
    try:
        audit_checkpoint.write(destination, checkpoint)
    except OSError as exc:
        raise click.ClickException(f"cannot write {destination}: {exc.strerror}") from None
    click.echo(f"checkpoint of seq {checkpoint.seq} written to {destination}")


@audit_group.command("re-anchor")
@click.option("--reason", required=True,
              help="Why (e.g. the incident: rows written under a wrong keyring).")
def audit_reanchor(reason: str) -> None:
    """Accept, signed and audited, the rows of a break MACed under a wrong audit key."""
    with _key_operation() as (_, keyring, session):
        anchor = audit.reanchor(session, keyring, audit.CLI, reason)
        session.commit()
    click.echo(f"rows seq {anchor.from_seq}-{anchor.to_seq} re-anchored; `icli audit verify` "
               "reports them as repaired by this re-anchor")


# -- retention ----------------------------------------------------------------------
@main.group()
def retention() -> None:
    """RGPD retention: crypto-shredding of data past its retention period."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="List what would go (ids and references only).")
def retention_run(dry_run: bool) -> None:
    """Purge what is past its retention (ICLI_RETENTION_* settings); the worker runs it daily."""
    from shared.domain import retention as policy_module

    settings = _settings()
    keyring = _keyring(settings)
    with _session(settings) as session:
        try:
            report = policy_module.run(session, keyring, audit.CLI,
                                       policy_module.Policy.from_settings(settings),
                                       dry_run=dry_run)
        except audit.ChainBrokenError as exc:
            raise click.ClickException(f"{exc}: run `icli audit verify`; nothing purged") from None
        session.commit()
    verb = "would purge" if dry_run else "purged"
    for person in report.people:
        click.echo(f"{verb} beneficiary {person.beneficiary_id} "
                   f"({policy_module.REASONS[person.reason]}): "
                   f"{', '.join(person.sheet_references) or 'no sheet'}")
    if report.dossier_ids:
        click.echo(f"{verb} session dossiers: {', '.join(map(str, report.dossier_ids))}")
    click.echo(f"{verb}: {len(report.people)} person(s), {len(report.dossier_ids)} dossier(s), "
               f"{report.audit_rows} audit row(s)")


# -- demo and check ---------------------------------------------------------------
@main.command()
@click.option("--people", "people_file", type=click.Path(exists=True, dir_okay=False,
                                                           path_type=Path),
              help="UTF-8 CSV of synthetic identities (see README).")
@click.option("--sheets", default=12, show_default=True, type=click.IntRange(0, 10000))
@click.option("--password", default=None, help="Password of every demo account.")
def demo(people_file: Path | None, sheets: int, password: str | None) -> None:
    """Seed an empty database with demo data; never prints personal data."""
    settings = _settings()
    _ensure_keyring(settings)
    _upgrade(settings)
    _seed_demo(settings, password=password, people_file=people_file, sheets=sheets)


def _seed_demo(settings: Settings, *, password: str | None, people_file: Path | None,
               sheets: int) -> None:
    from shared.demo import database_is_empty, read_people_csv, seed_demo
    from shared.encrypted import Vault
    from shared.errors import DomainError
    from shared.passwords import password_problem

    if password is not None and (problem := password_problem(password)):
        raise click.ClickException(f"--password refused: {problem}")
    people = None
    if people_file is not None:
        people, rejected = read_people_csv(people_file)
        for line, reason in rejected:
            click.echo(f"{people_file.name}, line {line}: refused ({reason})", err=True)
        click.echo(f"{len(people)} people imported, {len(rejected)} line(s) refused")
    keyring = _keyring(settings)
    with _session(settings) as session:
        if not database_is_empty(session):
            raise click.ClickException("the database already has accounts: demo seeds an "
                                       "empty database only")
        try:
            result = seed_demo(session, Vault(session, keyring, audit.CLI), password=password,
                               people=people, sheets=sheets, index_bits=settings.index_bits)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        audit.record(session, keyring, audit.CLI, "demo_seeded",
                     purpose=f"{result.people} people, {result.sheets} sheets")
        session.commit()
    click.echo(f"Demo: {result.people} people, {result.sheets} sheets, three sessions.")
    for email, role in result.accounts:
        click.echo(f"  {email:32} {role}")
    if result.password_generated:
        click.echo(f"Password of every demo account (shown once): {result.password}")


@main.command()
@click.option("--quiet", is_flag=True, help="Print failures only.")
def check(quiet: bool) -> None:
    """Decrypt every protected value; exit non-zero on any failure (ids only)."""
    from shared.integrity import check_all

    settings = _settings()
    keyring = _keyring(settings)
    with _session(settings) as session:
        reports = check_all(session, keyring)
        session.commit()
    failures = 0
    for table, report in reports.items():
        if not quiet:
            click.echo(f"{table:22} {report.rows:7} rows {report.values:8} values "
                       f"{len(report.failures):5} failures")
        for row_id, field in report.failures:
            click.echo(f"  FAILED {table} id={row_id} field={field}", err=True)
        failures += len(report.failures)
    if failures:
        raise click.ClickException(f"{failures} protected value(s) failed to decrypt")
    if not quiet:
        click.echo("all protected values decrypt")


if __name__ == "__main__":
    main()
