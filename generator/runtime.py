"""What a worker process holds: settings, its database engine, its keyring (no identity chain).

Initialised once by ``worker.main``; a forked child re-opens its own database connections
instead of sharing the parent's sockets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.crypto import KeyRing
from shared.db import make_engine, make_session_factory
from shared.heartbeat import Heartbeat
from shared.keys import load_keyring
from shared.migrate import require_current_schema


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keyring: KeyRing
    pid: int
    heartbeat: Heartbeat
    pdf: object | None = None  # generator.pdf.PdfConverter when LibreOffice is installed


_runtime: Runtime | None = None


def init(settings: Settings) -> Runtime:
    """Load the worker's keyring (content, audit, jobs chains only) and database engine."""
    global _runtime
    if _runtime is not None:  # re-initialised (tests): close the previous pool
        _runtime.engine.dispose()
    settings = settings.for_worker()
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    try:
        require_current_schema(engine)
        keyring = load_keyring(settings, sessions)  # refuses a key the database does not know
    except BaseException:
        engine.dispose()  # the worker will not start: its connections are closed
        raise
    _runtime = Runtime(settings, engine, sessions, keyring, os.getpid(),
                       Heartbeat("worker", keyring, sessions))
    return _runtime


def current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("generator runtime not initialised (start it with python -m generator)")
    if _runtime.pid != os.getpid():
        # In a forked child: drop the parent's pooled connections without closing them.
        _runtime.engine.dispose(close=False)
        _runtime.pid = os.getpid()
    return _runtime
