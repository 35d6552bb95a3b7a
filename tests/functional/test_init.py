"""`icli init secrets` then `icli init admin`: a production instance's first steps."""

from __future__ import annotations

import json

from sqlalchemy import select

from shared.config import load_settings
from shared.models import User
from tests.helpers import icli


def test_init_secrets_writes_each_file_once_readable_by_its_owner_only(test_env, tmp_path):
    folder = tmp_path / "secrets"
    result = icli(test_env, "init", "secrets", str(folder))
    files = {path.name: path for path in folder.iterdir()}
    assert set(files) == {"keyring", "keyring_worker", "secret_key", "link_key",
                          "metrics_token"}
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in files.values())
    for path in files.values():  # names only: no key material on the terminal
        assert path.read_text().strip() not in result.stdout
    worker_chains = set(json.loads(files["keyring_worker"].read_text())["chains"])
    assert "identity" not in worker_chains and "content" in worker_chains
    secret, link = files["secret_key"].read_text(), files["link_key"].read_text()
    assert secret != link and min(len(secret), len(link)) >= 32
    production = load_settings({  # what compose gives the web container: accepted as is
        "ICLI_ENV": "production", "ICLI_KEYRING": str(files["keyring"]),
        "ICLI_SECRET_KEY_FILE": str(files["secret_key"]),
        "ICLI_LINK_KEY_FILE": str(files["link_key"]),
        "ICLI_METRICS_TOKEN_FILE": str(files["metrics_token"]),
        "ICLI_DATABASE_URL": "postgresql+psycopg://icli@postgres/icli",
        "ICLI_REDIS_URL": "redis://redis:6379/0", "ICLI_SMTP_URL": "smtp://mail:25",
        "ICLI_BASE_URL": "https://icli.example"})
    assert production.keyring_path == files["keyring"]
    assert production.metrics_token == files["metrics_token"].read_text().strip()
    assert production.log_format == "json"

    before = {name: path.read_bytes() for name, path in files.items()}
    again = icli(test_env, "init", "secrets", str(folder), check=False)
    assert again.returncode != 0 and "nothing written" in again.stderr
    assert {name: path.read_bytes() for name, path in files.items()} == before


def test_init_secrets_refuses_a_folder_holding_any_of_its_files(test_env, tmp_path):
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "link_key").write_text("an operator's own link key, kept\n")
    result = icli(test_env, "init", "secrets", str(folder), check=False)
    assert result.returncode != 0 and "link_key" in result.stderr
    assert [path.name for path in folder.iterdir()] == ["link_key"]


def test_init_admin_creates_the_first_administrator_once(test_env, db_session, auth):
    result = icli(test_env, "init", "admin", "--email", "Premiere.Admin@test.invalid",
                  "--name", "Première Admin")
    password = result.stdout.rsplit("(shown once): ", 1)[1].strip()
    admin = db_session.scalars(select(User)).one()
    assert admin.has_role("admin") and admin.must_change_password
    # An administrator enrols a second factor at the first login (its recovery codes shown)
    signed_in = auth.login("premiere.admin@test.invalid", password)
    assert "Second facteur activé" in signed_in.get_data(as_text=True)
    home = auth.client.get("/")  # logged in, and sent to choose a password first
    assert home.status_code == 302 and home.headers["Location"].endswith("/mot-de-passe")

    refused = icli(test_env, "init", "admin", "--email", "autre@test.invalid",
                   "--name", "Autre Admin", check=False)
    assert refused.returncode != 0 and "déjà des comptes" in refused.stderr
    assert len(db_session.scalars(select(User)).all()) == 1
