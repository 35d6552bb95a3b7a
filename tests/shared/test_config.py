import pytest
from click.testing import CliRunner

from intake.cli import main
from intake.cli.common import load_cli_settings
from shared.config import ConfigError, load_settings


def production_env(tmp_path, **overrides):
    keyring = tmp_path / "keyring.json"
    keyring.write_text("{}")
    env = {"ICLI_ENV": "production", "ICLI_INSTANCE": str(tmp_path),
           "ICLI_SECRET_KEY": "s" * 40, "ICLI_LINK_KEY": "l" * 40,
           "ICLI_REDIS_URL": "redis://redis:6379/0",
           "ICLI_KEYRING": str(keyring),
           "ICLI_DATABASE_URL": "postgresql://icli@db/icli",
           "ICLI_SMTP_URL": "smtp+starttls://icli:p%40ss@smtp.example:587",
           "ICLI_BASE_URL": "https://icli.example"}
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def test_development_defaults_need_nothing(tmp_path):
    settings = load_settings({"ICLI_INSTANCE": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'icli.sqlite3'}"
    assert settings.uses_bundled_redis
    assert settings.effective_redis_url == f"unix://{tmp_path / 'redis.sock'}"
    assert settings.keyring_path == tmp_path / "keyring.json"
    assert len(settings.secret_key) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    # the same secret on the next start: sessions survive a restart
    assert load_settings({"ICLI_INSTANCE": str(tmp_path)}).secret_key == settings.secret_key


def test_production_settings_are_accepted_when_complete(tmp_path):
    settings = load_settings(production_env(tmp_path))
    assert settings.is_production
    assert settings.database_url == "postgresql+psycopg://icli@db/icli"


@pytest.mark.parametrize(("missing", "named"), [
    ("ICLI_SECRET_KEY", "ICLI_SECRET_KEY"),
    ("ICLI_LINK_KEY", "ICLI_LINK_KEY"),
    ("ICLI_REDIS_URL", "ICLI_REDIS_URL"),
    ("ICLI_DATABASE_URL", "ICLI_DATABASE_URL"),
    ("ICLI_SMTP_URL", "ICLI_SMTP_URL"),
    ("ICLI_BASE_URL", "ICLI_BASE_URL"),
])
def test_production_refuses_to_start_and_names_the_variable(tmp_path, missing, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(production_env(tmp_path, **{missing: None}))


def test_production_never_creates_a_keyring(tmp_path):
    env = production_env(tmp_path, ICLI_KEYRING=str(tmp_path / "absent.json"))
    with pytest.raises(ConfigError, match="ICLI_KEYRING"):
        load_settings(env)
    assert not (tmp_path / "absent.json").exists()


def test_secret_key_can_come_from_a_docker_secret_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("f" * 48 + "\n")
    settings = load_settings(production_env(tmp_path, ICLI_SECRET_KEY=None,
                                            ICLI_SECRET_KEY_FILE=str(secret)))
    assert settings.secret_key == "f" * 48


def test_production_refuses_a_link_key_equal_to_the_session_secret(tmp_path):
    with pytest.raises(ConfigError, match="ICLI_LINK_KEY must differ"):
        load_settings(production_env(tmp_path, ICLI_LINK_KEY="s" * 40))


def test_a_production_worker_needs_no_session_secret_and_never_reads_it(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("f" * 48)
    worker = load_settings(production_env(tmp_path, ICLI_SECRET_KEY_FILE=str(secret)),
                           worker=True)
    assert worker.secret_key == "" and worker.link_key == "l" * 40
    assert "identity" not in worker.key_chains
    assert load_settings(production_env(tmp_path, ICLI_SECRET_KEY=None), worker=True)


def test_a_development_worker_creates_no_session_secret(tmp_path):
    worker = load_settings({"ICLI_INSTANCE": str(tmp_path)}, worker=True)
    assert worker.secret_key == "" and len(worker.link_key) > 40
    assert not (tmp_path / "secret_key").exists()
    assert (tmp_path / "link_key").stat().st_mode & 0o777 == 0o600


def test_unknown_environment_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="ICLI_ENV"):
        load_settings({"ICLI_ENV": "staging", "ICLI_INSTANCE": str(tmp_path)})


def test_worker_settings_never_include_the_identity_chain(tmp_path):
    settings = load_settings({"ICLI_INSTANCE": str(tmp_path)}).for_worker()
    assert "identity" not in settings.key_chains
    assert "index" not in settings.key_chains
    assert "content" in settings.key_chains


def test_smtp_url_gives_security_credentials_and_default_ports(tmp_path):
    settings = load_settings(production_env(tmp_path))
    assert settings.smtp.host == "smtp.example" and settings.smtp.port == 587
    assert settings.smtp.security == "starttls"
    assert (settings.smtp.username, settings.smtp.password) == ("icli", "p@ss")
    assert "p@ss" not in repr(settings)
    tls = load_settings(production_env(tmp_path, ICLI_SMTP_URL="smtps://u:v@mail.example"))
    assert (tls.smtp.security, tls.smtp.port) == ("tls", 465)
    secret = tmp_path / "smtp_url"
    secret.write_text("smtp://relay.example:2525\n")
    from_file = load_settings(production_env(tmp_path, ICLI_SMTP_URL=None,
                                             ICLI_SMTP_URL_FILE=str(secret)))
    assert (from_file.smtp.host, from_file.smtp.port, from_file.smtp.security) == (
        "relay.example", 2525, "plain")


def test_an_unknown_smtp_scheme_is_refused_without_quoting_the_password(tmp_path):
    with pytest.raises(ConfigError, match="ICLI_SMTP_URL") as refused:
        load_settings(production_env(tmp_path, ICLI_SMTP_URL="http://u:hunter2@x:25"))
    assert "hunter2" not in str(refused.value)


def test_development_writes_mail_to_the_instance_outbox(tmp_path):
    settings = load_settings({"ICLI_INSTANCE": str(tmp_path)})
    assert settings.smtp is None
    assert settings.mail_outbox_dir == tmp_path / "outbox"
    assert settings.base_url == "http://127.0.0.1:8000"
def test_retention_durations_default_to_domain_proposal_and_are_configurable(tmp_path):
    defaults = load_settings({"ICLI_INSTANCE": str(tmp_path)})
    assert (defaults.retention_closed_months, defaults.retention_inactive_months,
            defaults.retention_audit_months) == (12, 24, 12)
    settings = load_settings({"ICLI_INSTANCE": str(tmp_path),
                              "ICLI_RETENTION_CLOSED_MONTHS": "6",
                              "ICLI_RETENTION_AUDIT_MONTHS": "9"})
    assert (settings.retention_closed_months, settings.retention_audit_months) == (6, 9)
    with pytest.raises(ConfigError, match="ICLI_RETENTION_INACTIVE_MONTHS"):
        load_settings({"ICLI_INSTANCE": str(tmp_path), "ICLI_RETENTION_INACTIVE_MONTHS": "0"})


def test_icli_worker_starts_in_production_without_the_session_secret(tmp_path, monkeypatch):
    """`icli worker` loads a worker's settings: without ICLI_SECRET_KEY* it goes on to the next
    check (here a missing keyring) instead of asking for the secret its worker never gets."""
    env = production_env(tmp_path, ICLI_KEYRING=str(tmp_path / "absent.json"))
    env.update(ICLI_SECRET_KEY=None, ICLI_SECRET_KEY_FILE=None)
    result = CliRunner().invoke(main, ["worker"], env=env)
    assert result.exit_code != 0
    assert "ICLI_KEYRING" in result.output
    assert "ICLI_SECRET_KEY" not in result.output

    for name, value in production_env(tmp_path, ICLI_SECRET_KEY=None).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ICLI_SECRET_KEY_FILE", raising=False)
    assert load_cli_settings(worker=True).secret_key == ""  # the settings `icli worker` loads
