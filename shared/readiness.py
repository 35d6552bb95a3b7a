"""Whether this web process can serve users now (``/readyz``), check by check: a load
balancer or an orchestrator sends no traffic to a process that is not ready, and the
operator reads which part failed. Only check names and short reasons, never data.

``/healthz`` says only that the process is alive (it answers); ``/readyz`` asks, each time:

- the database answers;
- Redis answers within the web's timeout (``shared.queue.WEB_TIMEOUT``, one retry);
- the keyring file, loaded as a new process would load it, matches the fingerprints the
  database recorded (a file replaced by the wrong one is seen before the next restart);
- at least one worker was seen within ``heartbeat.LIVE_FOR``.
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.config import ConfigError, Settings
from shared.crypto import CryptoError
from shared.heartbeat import live_processes
from shared.keys import load_keyring

OK = "ok"


def readiness(settings: Settings, sessions: sessionmaker[Session],
              connection: redis.Redis) -> dict[str, str]:
    """Each check's outcome: ``ok``, or a short reason."""
    return {
        "database": _check(lambda: _database(sessions), "unreachable"),
        "redis": _check(connection.ping, "unreachable", (redis.RedisError,)),
        "keyring": _check(lambda: load_keyring(settings, sessions), "refused",
                          (CryptoError, ConfigError, SQLAlchemyError, OSError, ValueError)),
        "worker": _check(lambda: _live_worker(sessions), "none seen in the last minute"),
    }


def _check(probe: Callable[[], object], reason: str,
           failures: tuple[type[Exception], ...] = (SQLAlchemyError,)) -> str:
    try:
        result = probe()
    except failures as exc:
        return f"{reason} ({type(exc).__name__})"
    return OK if result is not False else reason


def _database(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.execute(text("SELECT 1"))


def _live_worker(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        return any(process.kind == "worker" for process in live_processes(session))
