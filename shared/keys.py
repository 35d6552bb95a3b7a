"""Where each process gets its keyring, and what the database records about key versions."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from shared.config import ConfigError, Settings
from shared.crypto import KeyRing, fingerprint
from shared.models import KeyVersionRecord

log = logging.getLogger(__name__)


def ensure_keyring(settings: Settings) -> None:
    """Create the development keyring on first run; production never creates one."""
    if settings.keyring_path.is_file():
        return
    if settings.is_production:
        raise ConfigError(f"set ICLI_KEYRING to an existing keyring file ({settings.keyring_path})")
    if KeyRing.create_file(settings.keyring_path):
        log.info("created development keyring (mode 0600)")


def load_keyring(settings: Settings) -> KeyRing:
    """The chains this process may hold (Settings.key_chains): the worker has no identity."""
    ensure_keyring(settings)
    return KeyRing.load(settings.keyring_path, settings.key_chains)


def record_key_versions(session: Session, keyring: KeyRing) -> None:
    """Publish fingerprints and creation dates of the held versions (never the keys)."""
    for chain in keyring.chains:
        for version in keyring.versions(chain):
            if session.get(KeyVersionRecord, (chain, version.version)) is None:
                session.add(KeyVersionRecord(chain=chain, version=version.version,
                                             fingerprint=fingerprint(version.key)))
    session.flush()
