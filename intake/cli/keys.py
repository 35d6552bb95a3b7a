"""``icli keys``: the keyring, rotation and retirement."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click

from intake.cli.common import checked_keyring, database_session, load_cli_settings
from shared.crypto import CryptoError
from shared.db import make_engine, make_session_factory
from shared.domain import audit
from shared.domain.rotation import DEFAULT_BATCH


@click.group()
def keys() -> None:
    """Key material (the keyring file never enters the database)."""


@keys.command("worker-keyring")
@click.option("--out", "destination", required=True,
              type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True,
              help="Overwrite an existing file (after `keys add`: the worker reloads it).")
def keys_worker_keyring(destination: Path, replace: bool) -> None:
    """Write the keyring a worker gets: content, audit and jobs chains, never identity."""
    from shared.crypto import KeyRing

    settings = load_cli_settings()
    chains = settings.for_worker().key_chains
    try:
        written = KeyRing.export_chains(settings.keyring_path, destination, chains,
                                        replace=replace)
    except CryptoError as exc:
        raise click.ClickException(str(exc)) from None
    if not written:
        raise click.ClickException(f"{destination} exists already; not overwritten "
                                   "(--replace to update it)")
    click.echo(f"wrote {destination} (mode 0600): chains {', '.join(chains)}")


@contextlib.contextmanager
def key_operation() -> Iterator:
    """Settings, keyring and a session for one key command; refusals become CLI errors."""
    from shared.errors import DomainError

    settings = load_cli_settings()
    keyring = checked_keyring(settings)
    with database_session(settings) as session:
        try:
            yield settings, keyring, session
        except DomainError as exc:
            session.rollback()
            raise click.ClickException(exc.message) from None
        except CryptoError as exc:
            session.rollback()
            raise click.ClickException(str(exc)) from None


CHAIN = click.option("--chain", required=True, help="identity, content, index, audit or jobs")


@keys.command("status")
@click.option("--json", "as_json", is_flag=True, help="The stable JSON form, for scripts.")
def keys_status(as_json: bool) -> None:
    """Every key version per chain: state, rows using it, fingerprint, live holders."""
    from shared.domain import rotation

    with key_operation() as (_, keyring, session):
        report = rotation.status(session, keyring)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    names = {p["id"]: f"{p['kind']} pid {p['pid']} on {p['host']}" for p in report["processes"]}
    for chain, entry in report["chains"].items():
        click.echo(f"{chain} (primary v{entry['primary']})")
        for v in entry["versions"]:
            click.echo(f"  v{v['version']:<3} {v['state']:<9} rows {v['rows']:>8}  "
                       f"fp {v['fingerprint'] or '—':<16}  created {v['created_at'] or '—'}  "
                       f"held by {len(v['held_by'])} live process(es)")
            if v["state"] == "retired" and v["held_by"]:
                click.echo(f"    STILL HELD by {', '.join(names[p] for p in v['held_by'])}")
    click.echo(f"live processes: {len(report['processes'])}")
    for p in report["processes"]:
        click.echo(f"  {p['kind']:<6} pid {p['pid']} on {p['host']}, seen {p['seen_at']}")


@keys.command("add")
@CHAIN
def keys_add(chain: str) -> None:
    """Add a new version to a chain: every process loads it, nothing uses it yet."""
    from shared.domain import rotation

    with key_operation() as (settings, keyring, session):
        version = rotation.add(session, settings.keyring_path, keyring, chain, audit.CLI)
        session.commit()
    click.echo(f"added {chain} v{version}; wait until every process holds it "
               f"(`icli keys status`), then `icli keys promote --chain {chain} "
               f"--version {version}`")


@keys.command("promote")
@CHAIN
@click.option("--version", "version", required=True, type=int)
def keys_promote(chain: str, version: int) -> None:
    """Make a version primary; refused while a live process does not hold it."""
    from shared.domain import rotation

    with key_operation() as (settings, keyring, session):
        rotation.promote(session, settings.keyring_path, keyring, chain, version, audit.CLI)
        session.commit()
    click.echo(f"{chain} v{version} is primary; now `icli keys rotate --chain {chain}`")


@keys.command("rotate")
@click.option("--chain", "chains", multiple=True,
              help="identity, content or index (default: all three)")
@click.option("--batch", default=DEFAULT_BATCH, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--pause", default=0.0, show_default=True, type=click.FloatRange(0, 60),
              help="Seconds between batches, to spare a busy database.")
def keys_rotate(chains: tuple[str, ...], batch: int, pause: float) -> None:
    """Move every row to the primary version, in checkpointed batches; resumable."""
    from shared.domain import rotation
    from shared.errors import DomainError

    settings = load_cli_settings()
    keyring = checked_keyring(settings)
    engine = make_engine(settings)
    unfinished = []
    try:
        for chain in chains or rotation.ROTATED_CHAINS:
            started = time.monotonic()
            with click.progressbar(length=1, label=f"{chain}", show_pos=True,
                                   file=sys.stderr) as bar:
                def progress(done: int, total: int, bar=bar, started=started, chain=chain) -> None:
                    bar.length = max(total, 1)
                    bar.update(done - bar.pos)
                    rate = done / max(time.monotonic() - started, 1e-6)
                    bar.label = f"{chain} ({rate:,.0f} rows/s)"

                try:
                    result = rotation.rotate(make_session_factory(engine), keyring, chain,
                                             audit.CLI, batch=batch, pause=pause,
                                             progress=progress,
                                             index_bits=settings.index_bits)
                except DomainError as exc:
                    raise click.ClickException(exc.message) from None
            elapsed = time.monotonic() - started
            click.echo(f"{chain}: {result.rewrapped} row(s) moved to v{result.target_version} "
                       f"in {elapsed:.1f} s ({result.passes} pass(es))")
            if result.undecryptable:
                unfinished.append(f"{chain}: {len(result.undecryptable)} identity record(s) "
                                  "could not be decrypted and stay on their old version, ids "
                                  + ", ".join(map(str, result.undecryptable)))
    finally:
        engine.dispose()
    if unfinished:  # ids only: see `icli check` and the audit log for each failure
        raise click.ClickException("rotation incomplete; " + "; ".join(unfinished))


@keys.command("deep-reencrypt")
@click.option("--pseudonym", required=True, help="The person's pseudonym (never a name).")
def keys_deep_reencrypt(pseudonym: str) -> None:
    """Incident: re-encrypt one person's values under new data keys, old keys deleted."""
    from sqlalchemy import select

    from shared.domain import rotation
    from shared.models import Beneficiary

    with key_operation() as (_, keyring, session):
        person = session.scalar(select(Beneficiary).where(Beneficiary.pseudonym == pseudonym))
        if person is None:
            raise click.ClickException("no person has this pseudonym")
        count = rotation.deep_reencrypt(session, keyring, person, audit.CLI)
        session.commit()
    click.echo(f"{count} value(s) re-encrypted under new data keys; the old keys are deleted")


@keys.command("retire")
@CHAIN
@click.option("--version", "version", required=True, type=int)
@click.option("--wait", "wait_seconds", default=90, show_default=True,
              type=click.IntRange(0, 3600),
              help="Seconds to wait until no live process holds the version any more.")
def keys_retire(chain: str, version: int, wait_seconds: int) -> None:
    """Remove a version nothing needs any more (verified first); succeed once no live
    process holds it."""
    from shared.domain import rotation

    with key_operation() as (settings, keyring, session):
        verified = rotation.retire(session, settings.keyring_path, keyring, chain, version,
                                   audit.CLI)
        session.commit()
        holders = rotation.wait_until_released(session, chain, version, wait_seconds)
    if holders:
        raise click.ClickException(
            f"{chain} v{version} left the keyring file, but {len(holders)} live process(es) "
            f"still hold it after {wait_seconds} s: {'; '.join(holders)} (see `icli keys "
            "status`; restart them if they do not reload)")
    click.echo(f"{chain} v{version} retired ({verified} data key(s) verified without it) and "
               "held by no live process; backups made before this point can no longer be "
               "read with the keyring")


