"""Engine and session factory built from Settings; nothing Flask-specific."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from shared.config import Settings
from shared.files import private_dir

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Stored timestamps are naive UTC; session times (Meeting.starts_at) are Paris local time.
PARIS = ZoneInfo("Europe/Paris")


def utcnow() -> datetime:
    """Naive UTC timestamp: the same on SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


def paris_to_utc(local: datetime) -> datetime:
    """A naive Paris time as the naive UTC the timestamps are stored in."""
    return local.replace(tzinfo=PARIS).astimezone(UTC).replace(tzinfo=None)


def utc_to_paris(moment: datetime) -> datetime:
    """A stored naive UTC timestamp as naive Paris time."""
    return moment.replace(tzinfo=UTC).astimezone(PARIS).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuid.uuid4())


def make_engine(settings: Settings) -> Engine:
    """One engine per process; SQLite gets WAL, foreign keys and a busy timeout."""
    if settings.is_sqlite:
        private_dir(settings.instance)
        engine = create_engine(settings.database_url, connect_args={"timeout": 30},
                               hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Freed pages are overwritten: purged ciphertexts do not linger in the file.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    # hide_parameters: an error message never quotes a bound value (it could be personal).
    return create_engine(settings.database_url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                         hide_parameters=True)


def wait_briefly_for_locks(session: Session, seconds: int = 1) -> None:
    """Give up after ``seconds`` instead of waiting for a lock (30 s on SQLite, unbounded on
    PostgreSQL), for a process's last, best-effort write at exit: on SQLite the setting stays
    on the connection (SQLite has no per-transaction one)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f"PRAGMA busy_timeout={seconds * 1000}"))
    else:
        session.execute(text(f"SET LOCAL lock_timeout = '{seconds}s'"))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
