"""The container deployment (compose.yaml, Dockerfile, .dockerignore) keeps its promises.

These tests read the files only; they never need Docker.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SECRETS_DIR = "/run/secrets/"
APP_SERVICES = ("migrate", "web", "worker")
LONG_RUNNING_SERVICES = ("web", "worker", "redis", "postgres")
SECRET_LOOKING_NAME = re.compile(r"KEY|SECRET|PASS|TOKEN|CREDENTIAL", re.IGNORECASE)


# -- helpers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), f"missing {COMPOSE_FILE}"
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "compose.yaml is not a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose.get("services") or {}


def environment(service: dict) -> dict[str, str | None]:
    """A service's environment as a mapping, whichever syntax compose.yaml uses."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    result: dict[str, str | None] = {}
    for item in env:
        key, sep, value = str(item).partition("=")
        result[key] = value if sep else None
    return result


def mounted_secrets(service: dict) -> dict[str, str]:
    """Top-level secret name -> path where the service sees it."""
    result = {}
    for entry in service.get("secrets") or []:
        if isinstance(entry, str):
            source, target = entry, entry
        else:
            source = entry["source"]
            target = entry.get("target", source)
        result[source] = target if target.startswith("/") else SECRETS_DIR + target
    return result


def command_words(value: str | list | None) -> list[str]:
    if value is None:
        return []
    return [str(word) for word in value] if isinstance(value, list) else shlex.split(value)


def healthcheck_text(service: dict) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    return " ".join(command_words(test))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    assert DOCKERFILE.is_file(), f"missing {DOCKERFILE}"
    logical, current = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    result = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        result.append((instruction.upper(), arguments.strip()))
    return result


def dockerfile_env() -> dict[str, str]:
    env = {}
    for instruction, arguments in dockerfile_instructions():
        if instruction != "ENV":
            continue
        words = shlex.split(arguments)
        if len(words) >= 2 and "=" not in words[0]:  # legacy form: ENV KEY value
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            env[key] = value
    return env


# -- compose.yaml ----------------------------------------------------------------------------


def test_compose_file_follows_the_compose_spec_without_a_version_key(compose):
    assert "version" not in compose


def test_the_stack_has_postgres_redis_migrate_web_and_worker(services):
    missing = {"postgres", "redis", "migrate", "web", "worker"} - set(services)
    assert not missing, f"services missing from compose.yaml: {sorted(missing)}"


@pytest.mark.parametrize("name", LONG_RUNNING_SERVICES)
def test_every_long_running_service_has_a_healthcheck(services, name):
    healthcheck = services[name].get("healthcheck") or {}
    assert not healthcheck.get("disable"), f"{name}: healthcheck disabled"
    test = command_words(healthcheck.get("test"))
    assert test and test[0] != "NONE", f"{name}: no healthcheck test"


def test_postgres_is_healthy_only_when_it_accepts_connections(services):
    assert "pg_isready" in healthcheck_text(services["postgres"])


def test_redis_is_healthy_only_when_it_answers_ping(services):
    text = healthcheck_text(services["redis"])
    assert "redis-cli" in text and "ping" in text


def test_web_is_healthy_only_when_it_serves_healthz(services):
    text = healthcheck_text(services["web"])
    assert "http://127.0.0.1:8000/healthz" in text
    assert "curl" not in text and "wget" not in text, "python:3.11-slim has neither"


def test_worker_healthcheck_pings_the_redis_it_is_configured_with(services):
    text = healthcheck_text(services["worker"])
    assert "ICLI_REDIS_URL" in text and ".ping()" in text


def test_redis_persists_jobs_and_never_evicts_them(services):
    command = " ".join(command_words(services["redis"].get("command")))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_data_services_keep_their_data_in_a_volume(services, name):
    assert services[name].get("volumes"), f"{name}: no volume, data lost on recreate"


def test_migrate_applies_the_migrations_once_and_is_not_restarted(services):
    migrate = services["migrate"]
    assert command_words(migrate.get("command")) == ["icli", "db", "upgrade"]
    assert migrate.get("restart") == "no"


def test_migrate_waits_for_a_healthy_postgres(services):
    depends_on = services["migrate"].get("depends_on") or {}
    assert isinstance(depends_on, dict), "depends_on needs the long syntax to set a condition"
    assert (depends_on.get("postgres") or {}).get("condition") == "service_healthy"


@pytest.mark.parametrize("name", ["web", "worker"])
def test_web_and_worker_start_only_after_a_successful_migration(services, name):
    depends_on = services[name].get("depends_on") or {}
    assert isinstance(depends_on, dict), "depends_on needs the long syntax to set a condition"
    condition = (depends_on.get("migrate") or {}).get("condition")
    assert condition == "service_completed_successfully"


@pytest.mark.parametrize("name", ["web", "worker"])
def test_web_and_worker_wait_for_a_healthy_redis(services, name):
    depends_on = services[name].get("depends_on") or {}
    assert isinstance(depends_on, dict), "depends_on needs the long syntax to set a condition"
    assert (depends_on.get("redis") or {}).get("condition") == "service_healthy"


def test_redis_has_a_memory_limit_so_that_noeviction_refuses_instead_of_swapping(services):
    command = command_words(services["redis"].get("command"))
    assert "--maxmemory" in command and command[command.index("--maxmemory") + 1] != "0"


def test_web_threads_outlast_the_longest_request(services):
    """A template check runs 30 s at most; gunicorn's timeout must not kill it."""
    web = command_words(services["web"].get("command"))
    assert web[web.index("--worker-class") + 1] == "gthread"
    assert int(web[web.index("--timeout") + 1]) > 30


def test_web_metrics_sum_gunicorns_processes_from_an_empty_tmpfs_and_need_a_token(services):
    web = services["web"]
    directory = environment(web).get("PROMETHEUS_MULTIPROC_DIR")
    assert directory and directory in web.get("tmpfs", [])
    assert environment(web).get("ICLI_METRICS_TOKEN_FILE") == \
        mounted_secrets(web).get("metrics_token")


def test_the_worker_serves_its_metrics_on_the_compose_network_only(services):
    worker = services["worker"]
    assert environment(worker).get("ICLI_WORKER_METRICS_ADDRESS", "").endswith(":9101")
    assert not worker.get("ports")


def test_the_image_has_a_font_with_calibris_metrics():
    dockerfile = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()
    assert "fonts-crosextra-carlito" in dockerfile


def test_the_proxy_example_forwards_host_and_the_client_address():
    caddyfile = (Path(__file__).resolve().parents[1] / "deploy" / "Caddyfile").read_text()
    for header in ("Host {host}", "X-Forwarded-For", "X-Forwarded-Proto"):
        assert f"header_up {header}" in caddyfile


def test_web_runs_gunicorn_and_worker_runs_the_generator(services):
    web = command_words(services["web"].get("command"))
    assert web[:1] == ["gunicorn"] and web[-1] == "intake.wsgi:app"
    assert command_words(services["worker"].get("command")) == ["python", "-m", "generator"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_in_production(services, name):
    assert environment(services[name]).get("ICLI_ENV") == "production"


def test_every_secret_is_read_from_a_file_under_secrets(compose):
    secrets = compose.get("secrets") or {}
    assert secrets, "compose.yaml declares no secrets"
    for name, definition in secrets.items():
        assert isinstance(definition, dict), f"secret {name}: inline value"
        assert set(definition) == {"file"}, f"secret {name}: only `file:` is allowed"
        assert str(definition["file"]).startswith("./secrets/"), f"secret {name}: outside ./secrets"


def test_the_expected_secrets_are_declared(compose):
    declared = set(compose.get("secrets") or {})
    missing = {"secret_key", "link_key", "keyring", "keyring_worker",
               "postgres_password"} - declared
    assert not missing, f"secrets missing: {sorted(missing)}"


def test_worker_never_receives_the_identity_keyring(services):
    worker = services["worker"]
    mounted = mounted_secrets(worker)
    assert "keyring" not in mounted, "the worker must not get the full keyring"
    assert "keyring_worker" in mounted
    assert environment(worker).get("ICLI_KEYRING") == mounted["keyring_worker"]


def test_web_receives_the_full_keyring(services):
    web = services["web"]
    mounted = mounted_secrets(web)
    assert "keyring" in mounted
    assert environment(web).get("ICLI_KEYRING") == mounted["keyring"]


def test_web_reads_its_session_secret_from_a_docker_secret(services):
    web = services["web"]
    env = environment(web)
    assert "ICLI_SECRET_KEY" not in env
    assert env.get("ICLI_SECRET_KEY_FILE") == mounted_secrets(web).get("secret_key")


def test_the_worker_never_receives_the_session_secret(services):
    # With it alone, a session cookie for any user could be forged (issue 16, item 1).
    worker = services["worker"]
    assert "secret_key" not in mounted_secrets(worker)
    assert not [k for k in environment(worker) if k.startswith("ICLI_SECRET_KEY")]


@pytest.mark.parametrize("name", ["web", "worker"])
def test_web_and_worker_share_the_answer_link_key(services, name):
    service = services[name]
    assert environment(service).get("ICLI_LINK_KEY_FILE") == mounted_secrets(service)["link_key"]


def test_no_service_environment_holds_a_secret_value(services):
    offenders = []
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_LOOKING_NAME.search(key) and not (value or "").startswith(SECRETS_DIR):
                offenders.append(f"{name}: {key}={value!r}")
    assert not offenders, f"secret-looking variables not pointing to {SECRETS_DIR}: {offenders}"


def test_no_url_in_the_environment_carries_a_password(services):
    with_password = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)
    offenders = [
        f"{name}: {key}"
        for name, service in services.items()
        for key, value in environment(service).items()
        if value and with_password.match(value)
    ]
    assert not offenders, f"URLs with an inline password: {offenders}"


def test_every_secret_file_a_service_points_to_is_mounted_in_that_service(services):
    problems = []
    for name, service in services.items():
        mounted = set(mounted_secrets(service).values())
        for key, value in environment(service).items():
            if value and value.startswith(SECRETS_DIR) and value not in mounted:
                problems.append(f"{name}: {key}={value} is not mounted")
    assert not problems, problems


# -- Dockerfile and build context --------------------------------------------------------------


def test_docker_image_is_based_on_python_311_slim():
    bases = [args for instruction, args in dockerfile_instructions() if instruction == "FROM"]
    assert bases and bases[-1].split()[0].startswith("python:3.11-slim")


def test_docker_image_does_not_run_as_root():
    users = [args for instruction, args in dockerfile_instructions() if instruction == "USER"]
    assert users, "no USER instruction: the image runs as root"
    user = users[-1].split(":")[0].strip()
    assert user not in {"root", "0"}, f"the final USER is {user}"


def test_docker_image_sets_the_templates_directory_and_production():
    env = dockerfile_env()
    assert env.get("ICLI_TEMPLATES_DIR") == "/app/templates_docx"
    assert env.get("ICLI_ENV") == "production"


def test_docker_image_installs_the_project_without_editable_mode():
    runs = " ".join(args for instruction, args in dockerfile_instructions() if instruction == "RUN")
    assert re.search(r"pip install [^;&|]*--no-cache-dir[^;&|]* \.(\s|$)", runs), runs
    assert " -e " not in runs and "--editable" not in runs


def test_docker_image_has_libreoffice_for_the_workers_pdf():
    runs = " ".join(args for instruction, args in dockerfile_instructions() if instruction == "RUN")
    assert "libreoffice-writer-nogui" in runs and "python3-uno" in runs


def test_docker_image_serves_the_web_app_on_port_8000_by_default():
    instructions = dockerfile_instructions()
    exposed = " ".join(args for instruction, args in instructions if instruction == "EXPOSE")
    assert "8000" in exposed.split()
    commands = [args for instruction, args in instructions if instruction == "CMD"]
    assert commands and "gunicorn" in commands[-1] and "intake.wsgi:app" in commands[-1]


@pytest.mark.parametrize("pattern", ["secrets", ".venv", "instance", ".git", "__pycache__"])
def test_docker_build_context_leaves_out_secrets_and_local_state(pattern):
    assert DOCKERIGNORE.is_file(), f"missing {DOCKERIGNORE}"
    entries = {
        line.strip().rstrip("/").removeprefix("**/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert pattern in entries, f".dockerignore does not exclude {pattern}"
