"""Loading the keyring, and checking it against what the database records about key versions.

Every process (web, worker, CLI) compares each key it holds with the fingerprint the database
stored for that chain and version, before its first use and at every reload: a keyring of
another instance, or a key replaced at the same version, is refused before it seals data
nobody could read, or audit rows that break the chain.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shared.config import ConfigError, Settings
from shared.crypto import KeyMismatchError, KeyRing, KeyVersion, fingerprint, fingerprint_matches
from shared.models import KeyVersionRecord

log = logging.getLogger(__name__)

UNKNOWN_VERSION = ("is neither recorded by this database nor later than the versions it "
                   "recorded for this chain (wrong keyring)")
NO_RECORDED_VERSION = ("is not recorded by this database, and the keyring holds none of the "
                       "versions it recorded for this chain (another instance's keyring?)")


def ensure_keyring(settings: Settings, engine: Engine) -> None:
    """Create the development keyring on first run; production never creates one, nor does
    development for a database that already recorded keys (they would not be these)."""
    if settings.keyring_path.is_file():
        return
    if settings.is_production:
        raise ConfigError(f"set ICLI_KEYRING to an existing keyring file ({settings.keyring_path})")
    if _records_keys(engine):
        raise ConfigError(f"keyring {settings.keyring_path} not found, and this database "
                          "already holds data under existing keys: set ICLI_KEYRING to its "
                          "keyring (a new keyring is created for a new database only)")
    if KeyRing.create_file(settings.keyring_path):
        log.info("created development keyring (mode 0600)")


def _records_keys(engine: Engine) -> bool:
    if not inspect(engine).has_table(KeyVersionRecord.__tablename__):
        return False
    with Session(engine) as session:
        return session.scalars(select(KeyVersionRecord).limit(1)).first() is not None


def load_keyring(settings: Settings, sessions: sessionmaker[Session]) -> KeyRing:
    """The chains this process may hold (Settings.key_chains: the worker has no identity),
    checked against the database now and at every reload; raises KeyMismatchError."""
    ensure_keyring(settings, sessions.kw["bind"])

    def check(versions: list[KeyVersion]) -> None:
        check_key_versions(sessions, versions)

    return KeyRing.load(settings.keyring_path, settings.key_chains, check=check)


def check_key_versions(sessions: sessionmaker[Session], versions: Iterable[KeyVersion]) -> None:
    """Refuse a keyring the recorded fingerprints do not vouch for (record_key_versions);
    record the versions the database does not know yet (a version just added above the
    recorded ones, or every version for a new database)."""
    versions = list(versions)
    if not inspect(sessions.kw["bind"]).has_table(KeyVersionRecord.__tablename__):
        return  # a database not migrated yet holds nothing sealed
    with sessions() as session:
        try:
            record_key_versions(session, versions)
            session.commit()
        except IntegrityError:  # another process recorded the same new version first
            session.rollback()
            record_key_versions(session, versions)
            session.commit()


def record_key_versions(session: Session, versions: Iterable[KeyVersion] | KeyRing) -> None:
    """Publish fingerprints of the held versions (never the keys) after comparing those the
    database already has, in constant time; a refusal names the chain and version only.

    For a chain the database already knows, the keyring must hold at least one recorded
    version with the right key, and a version the database does not know is recorded only
    above the highest recorded one (``icli keys add``): a keyring of another instance, whose
    versions all differ from the recorded ones, is refused instead of being recorded."""
    if isinstance(versions, KeyRing):
        versions = [v for chain in versions.chains for v in versions.versions(chain)]
    recorded = {(r.chain, r.version): r.fingerprint
                for r in session.scalars(select(KeyVersionRecord))}
    highest: dict[str, int] = {}
    for chain, number in recorded:
        highest[chain] = max(number, highest.get(chain, number))
    matched: set[str] = set()
    for version in versions:
        expected = recorded.get((version.chain, version.version))
        if expected is not None:
            if not fingerprint_matches(version.key, expected):
                raise KeyMismatchError(version.chain, version.version)
            matched.add(version.chain)
        elif version.version <= highest.get(version.chain, 0):
            raise KeyMismatchError(version.chain, version.version, UNKNOWN_VERSION)
    for version in versions:
        if version.chain in highest and version.chain not in matched:
            raise KeyMismatchError(version.chain, version.version, NO_RECORDED_VERSION)
        if (version.chain, version.version) not in recorded:
            session.add(KeyVersionRecord(chain=version.chain, version=version.version,
                                         fingerprint=fingerprint(version.key)))
    session.flush()
