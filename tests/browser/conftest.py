"""Real-browser fixtures: the app served by gunicorn, driven by a headless Chromium.

Debian's ``chromium`` and ``chromium-driver`` packages provide the browser and its driver;
Selenium is pointed at both explicitly, so Selenium Manager never runs and nothing is
downloaded at run time. Without them the browser tests are skipped on a developer's machine
and fail in CI (``CI`` set), where .ci/run installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.factories import reference_data, users_for_every_role
from tests.helpers import answers, die_with_parent, free_port, oidc_environment

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session", autouse=True)
def _chromium_is_installed():
    """First of all (session-scoped, autouse): skip here, fail in CI, if Chromium is absent."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if not missing:
        return
    reason = (f"browser tests need Debian's chromium and chromium-driver packages "
              f"({', '.join(missing)} not found): apt-get install chromium chromium-driver")
    if in_ci():
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def live_server(test_env, engine, keyring, tmp_path_factory, oidc_provider):
    """The app under gunicorn, on the test instance's database and Redis, its users allowed to
    sign in through the tests' OpenID Connect provider too; yields its base URL.

    One server per test process, for the whole run: each test's data is committed before the
    browser acts and emptied after it, as for every database test. (Scoped to the package, it
    was stopped and started again, language model and all, each time pytest-xdist handed the
    process a test from elsewhere between two browser tests.)

    ``engine`` builds (and the autouse cleaner empties) the schema; ``keyring`` creates the
    development keyring before the server's workers would race to create it.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("live-server") / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--threads", "4", "--preload", "--no-control-socket", "intake.wsgi:app"],
            env={**os.environ, **test_env, **oidc_environment(oidc_provider),
                 "ICLI_BASE_URL": base_url},  # the provider sends the browser back there
            stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent)
    try:
        started = time.monotonic()
        while not answers(f"{base_url}/healthz"):
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited ({process.returncode}):\n{log_path.read_text()}")
            # The master loads the language model before it forks the workers (--preload)
            if time.monotonic() - started > 180:
                pytest.fail(f"no answer from {base_url}/healthz within 180 s:\n"
                            f"{log_path.read_text()}")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium with a fresh profile; its console log is kept (``get_log``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = Path(tempfile.mkdtemp(prefix="icli-chromium-"))
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager is skipped and never downloads anything.
    service = Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def accounts(db_session, vault):
    """Reference data and one account of every role (password: factories.PASSWORD)."""
    north, south, structures = reference_data(db_session)
    users = users_for_every_role(db_session, vault, north, south, structures)
    db_session.commit()
    return users
