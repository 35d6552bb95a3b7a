"""Log lines: JSON objects in production, each with a time and the request's id."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime

import pytest

from shared.config import ConfigError, load_settings
from shared.logs import configure_logging, request_id, safe_request_id


@pytest.fixture
def root_logging():
    """configure_logging replaces the root's handlers: the test's own are put back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_time_level_service_and_request_id(settings, capsys, root_logging):
    configure_logging(dataclasses.replace(settings, log_format="json"), "worker")
    token = request_id.set("req-7")
    try:
        logging.getLogger("icli.test").info("job %s done", 12)
    finally:
        request_id.reset(token)
    logging.getLogger("icli.test").warning("outside any request")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["message"] == "job 12 done" and first["level"] == "INFO"
    assert first["logger"] == "icli.test" and first["service"] == "worker"
    assert first["request_id"] == "req-7" and isinstance(first["pid"], int)
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert second["request_id"] is None and second["level"] == "WARNING"


def test_text_lines_in_development(settings, capsys, root_logging):
    configure_logging(settings, "web")
    logging.getLogger("icli.test").info("started")
    line = capsys.readouterr().err.strip()
    assert " web[" in line and line.endswith("icli.test: started")


def test_log_format_defaults_to_json_in_production_only(test_env):
    assert load_settings(test_env).log_format == "text"
    assert load_settings({**test_env, "ICLI_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="ICLI_LOG_FORMAT"):
        load_settings({**test_env, "ICLI_LOG_FORMAT": "xml"})


@pytest.mark.parametrize("address", ["9101", "host:", ":9101", "0.0.0.0:99999", "a:b"])
def test_a_malformed_worker_metrics_address_is_refused(test_env, address):
    with pytest.raises(ConfigError, match="ICLI_WORKER_METRICS_ADDRESS"):
        load_settings({**test_env, "ICLI_WORKER_METRICS_ADDRESS": address})


def test_only_well_formed_request_ids_are_taken():
    assert safe_request_id("4f1c-proxy.id:2") == "4f1c-proxy.id:2"
    for bad in ("", "a" * 65, "a b", "x\ny", "abc\n", "é", None, 12):
        assert safe_request_id(bad) is None


def test_a_job_whose_meta_redis_mangled_has_no_request_id():
    from types import SimpleNamespace

    from generator.worker import requested_by

    assert requested_by(SimpleNamespace(meta={"request_id": "req-9"})) == "req-9"
    for meta in ([1, 2], "req-9", None, {"request_id": ["req-9"]}, {"request_id": "a\n"}):
        assert requested_by(SimpleNamespace(meta=meta)) is None


def test_the_metrics_token_is_stripped_and_long_in_production(test_env, tmp_path):
    assert load_settings({**test_env, "ICLI_METRICS_TOKEN": " tok "}).metrics_token == "tok"
    keyring = tmp_path / "keyring"
    keyring.write_text("{}")
    production = {"ICLI_ENV": "production", "ICLI_KEYRING": str(keyring),
                  "ICLI_SECRET_KEY": "s" * 40, "ICLI_LINK_KEY": "l" * 40,
                  "ICLI_DATABASE_URL": "postgresql+psycopg://icli@postgres/icli",
                  "ICLI_REDIS_URL": "redis://redis:6379/0", "ICLI_SMTP_URL": "smtp://mail:25",
                  "ICLI_BASE_URL": "https://icli.example"}
    assert load_settings({**production, "ICLI_METRICS_TOKEN": "t" * 32}).metrics_token
    with pytest.raises(ConfigError, match="ICLI_METRICS_TOKEN"):
        load_settings({**production, "ICLI_METRICS_TOKEN": "short"})
