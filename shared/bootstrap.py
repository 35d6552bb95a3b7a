"""The files a production instance starts from (``icli init secrets``), in the folder that
compose.yaml reads its secrets from: the keyring, the worker's keyring (no identity chain),
the session secret, the link key and the metrics token, each readable by its owner only
(0600).

All or nothing, and never over an existing file: a second run, or a folder that already holds
any of them, is refused before anything is written (a replaced keyring would make every
sealed value unreadable; rotation is ``icli keys``).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from shared.config import WORKER_KEY_CHAINS
from shared.crypto import KeyRing
from shared.files import private_dir, write_private

KEYRING = "keyring"
WORKER_KEYRING = "keyring_worker"
# Session cookies; answer links in e-mails; what Prometheus sends to /metrics.
RANDOM_SECRETS = ("secret_key", "link_key", "metrics_token")
WRITTEN = (KEYRING, WORKER_KEYRING, *RANDOM_SECRETS)


class SecretsExistError(Exception):
    """The folder already holds one of the files ``write_secrets`` writes."""


def write_secrets(folder: Path) -> list[Path]:
    """Write every file of ``WRITTEN`` into ``folder`` (created 0700); returns their paths."""
    existing = [folder / name for name in WRITTEN if (folder / name).exists()]
    if existing:
        raise SecretsExistError(", ".join(str(path) for path in existing))
    private_dir(folder)
    keyring = folder / KEYRING
    if not KeyRing.create_file(keyring):
        raise SecretsExistError(str(keyring))  # created meanwhile by another run
    KeyRing.export_chains(keyring, folder / WORKER_KEYRING, WORKER_KEY_CHAINS)
    for name in RANDOM_SECRETS:
        if not write_private(folder / name, secrets.token_urlsafe(48) + "\n", exclusive=True):
            raise SecretsExistError(str(folder / name))
    return [folder / name for name in WRITTEN]
