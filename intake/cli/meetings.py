"""``icli meetings`` and ``icli generate``: meetings (séances) and their documents."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from intake.cli.common import checked_keyring, database_session, load_cli_settings
from shared.domain import audit


@click.group()
def meetings() -> None:
    """Meetings (séances)."""


@meetings.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for scripts.")
def meetings_list(as_json: bool) -> None:
    """Every meeting: id, circonscription, date, state, number of situations."""
    from sqlalchemy import select

    from shared.models import Meeting

    with database_session(load_cli_settings()) as session:
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


@click.command()
@click.option("--meeting", "meeting_id", type=int, required=True, help="Meeting id.")
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
    settings = load_cli_settings()
    keyring = checked_keyring(settings)
    connection = redis_connection(settings)
    try:
        workers = [w for w in Worker.all(connection=connection)
                   if DOCUMENTS_QUEUE in w.queue_names()]
    except Exception:
        workers = []
    if not workers:
        raise click.ClickException("no worker is running: start `icli worker` first")
    with database_session(settings) as session:
        meeting = session.get(Meeting, meeting_id)
        sheet = session.get(Sheet, sheet_id) if sheet_id else None
        if meeting is None or (sheet_id and sheet is None):
            raise click.ClickException("no such meeting or sheet")
        vault = Vault(session, keyring, audit.CLI)
        try:
            job = documents.ask_for_document(session, vault, meeting, kind, sheet)
        except DomainError as exc:
            session.commit()  # a refused dossier keeps its review counts and audit rows
            raise click.ClickException(exc.message) from None
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
        try:
            body = documents.export(vault, document, pdf=pdf)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        session.commit()
    # Owner-only, never through a symlink: a plaintext document leaves the vault here.
    try:
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out_path}: {exc.strerror}") from None
    click.echo(f"wrote {out_path} ({len(body)} bytes, version {document.number})")


def _check_writable(path: Path) -> None:
    folder = path.parent
    if path.is_symlink():
        raise click.ClickException(f"--out {path}: a symbolic link is refused")
    if not folder.is_dir():
        raise click.ClickException(f"--out {path}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.ClickException(f"--out {path}: not writable")


