"""Each intake and worker process follows the keyring file and says which versions it holds.

``Heartbeat.beat()`` reloads the keyring when its file changed (a version added, promoted or
retired: no restart needed), then records in ``process_heartbeats`` the versions held —
numbers only, never a key. ``icli keys promote`` is refused until every process seen within
``LIVE_FOR`` holds the new version (docs/security.md, rule 6), and ``icli keys retire`` waits until
none holds the retired one. Intake beats before each request, the worker before each job and
in its maintenance step: the file is checked every time, the report written at once after a
reload, else at most every ``INTERVAL``. A process that exits normally deletes its own row
(``forget``): only a killed one keeps counting as live until ``LIVE_FOR`` has passed.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.crypto import CryptoError, KeyRing
from shared.db import utcnow, wait_briefly_for_locks
from shared.models import ProcessHeartbeat

log = logging.getLogger(__name__)

INTERVAL = 15.0  # seconds between two beats of a busy process
LIVE_FOR = timedelta(seconds=60)  # a process not seen for this long is not live
FORGET_AFTER = timedelta(days=1)  # rows of long-gone processes are deleted


def held_versions(keyring: KeyRing) -> dict[str, list[int]]:
    return {chain: [v.version for v in keyring.versions(chain)] for chain in keyring.chains}


class Heartbeat:
    def __init__(self, kind: str, keyring: KeyRing, sessions: sessionmaker[Session],
                 interval: float = INTERVAL) -> None:
        self.kind = kind
        self.keyring = keyring
        self.sessions = sessions
        self.interval = interval
        self._pid = 0
        self._id = ""
        self._last = float("-inf")
        self.converts_pdf: bool | None = None  # set by the worker once LibreOffice is up

    def beat(self, *, force: bool = False) -> None:
        """Reload the keyring if its file changed, then report (at once after a reload, else
        at most every ``interval``); never raises (a failed beat only makes this process
        look absent, which blocks a promote: the safe side)."""
        if os.getpid() != self._pid:  # a forked child is another process
            self._pid, self._id = os.getpid(), str(uuid.uuid4())
            self._last = float("-inf")
            atexit.register(self.forget)
        # The file is looked at on every call (one stat): a retired version leaves this
        # process before its next request or job, and the report says so at once.
        try:
            reloaded = self.keyring.refresh()
        except CryptoError as exc:  # keep serving with the keys already held
            log.error("keyring not reloaded: %s", exc)
            reloaded = False
        if reloaded:
            log.info("keyring reloaded: %s", json.dumps(held_versions(self.keyring)))
        now = time.monotonic()
        if not (force or reloaded) and now - self._last < self.interval:
            return
        self._last = now
        try:
            with self.sessions() as session:
                record(session, self._id, self.kind, held_versions(self.keyring),
                       converts_pdf=self.converts_pdf)
                session.commit()
        except SQLAlchemyError as exc:
            log.warning("heartbeat not recorded (%s)", type(exc).__name__)


    def forget(self) -> None:
        """Delete this process's row: it holds no key any more once it has exited. Never
        raises, and logs nothing: at exit the logging streams may be closed already, and a row
        left behind only stops counting as live after ``LIVE_FOR``."""
        if os.getpid() != self._pid:  # registered by a parent this process was forked from
            return
        try:
            with self.sessions() as session:
                wait_briefly_for_locks(session)  # a write lock held elsewhere: exit anyway
                session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.id == self._id))
                session.commit()
        except SQLAlchemyError:
            pass


def record(session: Session, process_id: str, kind: str, held: dict[str, list[int]],
           now: datetime | None = None, converts_pdf: bool | None = None) -> None:
    now = now or utcnow()
    row = session.get(ProcessHeartbeat, process_id)
    if row is None:
        row = ProcessHeartbeat(id=process_id, kind=kind, host=socket.gethostname()[:64],
                               pid=os.getpid(), started_at=now)
        session.add(row)
    row.seen_at, row.held = now, json.dumps(held, sort_keys=True)
    row.converts_pdf = converts_pdf
    session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.seen_at < now - FORGET_AFTER))


def live_processes(session: Session, now: datetime | None = None) -> list[ProcessHeartbeat]:
    now = now or utcnow()
    return list(session.scalars(select(ProcessHeartbeat)
                                .where(ProcessHeartbeat.seen_at >= now - LIVE_FOR)
                                .order_by(ProcessHeartbeat.kind, ProcessHeartbeat.started_at)))


def pdf_available(session: Session, now: datetime | None = None) -> bool:
    """Whether a live worker converts documents to PDF (it may run on another machine)."""
    return any(p.kind == "worker" and p.converts_pdf for p in live_processes(session, now))


def holds(process: ProcessHeartbeat, chain: str, version: int) -> bool | None:
    """Whether a process holds ``chain`` v``version``; None if it does not load the chain at
    all (the worker and the identity chain)."""
    held = json.loads(process.held)
    if chain not in held:
        return None
    return version in held[chain]
