"""What every command shares: settings, keyring, a database session, a unit of work."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import click

from shared.config import ConfigError, Settings, load_settings, worker_environment
from shared.crypto import CryptoError
from shared.db import make_engine, make_session_factory
from shared.domain import audit
from shared.keys import ensure_keyring, load_keyring
from shared.processes import die_with_parent

DEFAULT_PORT = 8000
WORKER_COMMAND = [sys.executable, "-m", "generator"]


def load_cli_settings(*, worker: bool = False) -> Settings:
    """``worker``: the settings of a worker (no session secret read, nor required)."""
    try:
        return load_settings(worker=worker)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def outside_the_terminal_group() -> None:  # pragma: no cover - runs in the child
    """Bundled Redis: Ctrl-C in a terminal signals its whole foreground process group at
    once; out of it, Redis is stopped last, after the worker and the web app that use it."""
    os.setpgrp()
    die_with_parent()


def spawn(args: list[str]) -> subprocess.Popen:
    # The worker never gets the session secret: with it, any user's cookie could be forged.
    env = worker_environment() if args == WORKER_COMMAND else None
    return subprocess.Popen(args, preexec_fn=die_with_parent, env=env)


def checked_keyring(settings: Settings):
    """The keyring, compared with the fingerprints the database recorded before any use (and
    at every reload): a wrong keyring stops the command before it writes anything."""
    engine = make_engine(settings)
    # A reload during the command (`keys add` rewrites the file) checks through this engine
    # again: it is disposed of when the command ends, so no connection outlives it.
    click.get_current_context().call_on_close(engine.dispose)
    try:
        return load_keyring(settings, make_session_factory(engine))
    except (ConfigError, CryptoError) as exc:
        raise click.ClickException(str(exc)) from None


def ensure_instance_keyring(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        ensure_keyring(settings, engine)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


@contextlib.contextmanager
def database_session(settings: Settings) -> Iterator:
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@contextlib.contextmanager
def cli_unit_of_work(settings: Settings | None = None) -> Iterator[tuple]:
    """A session and a Vault acting as the CLI (its domain calls write their audit rows in
    that name); commits when the block ends, and turns a DomainError into the command's
    error (its French message, exit code 1) with nothing written."""
    from shared.encrypted import Vault
    from shared.errors import DomainError

    settings = settings or load_cli_settings()
    keyring = checked_keyring(settings)
    with database_session(settings) as session:
        try:
            yield session, Vault(session, keyring, audit.CLI)
        except DomainError as exc:
            session.rollback()
            raise click.ClickException(exc.message) from None
        session.commit()
