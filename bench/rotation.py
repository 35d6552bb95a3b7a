"""Key rotation benchmark: rewrap rate for 100,000 beneficiaries, and reads meanwhile.

    .venv/bin/python bench/rotation.py [--people 100000] [--batch 2000]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

For each database (a temporary SQLite file; PostgreSQL when --postgres is given: a database
``icli_bench_rotation`` is created there and dropped afterwards) it seeds N beneficiaries, each
with an identity record (its name sealed) and their identity and content data keys wrapped
under v1, then ``icli keys add`` + ``promote`` the way the CLI does and times
``shared.domain.rotation.rotate`` of the identity and content chains (2 N data keys). Meanwhile a
separate process reads random people as intake does (data key lookup, unwrap, decrypt the
name, the audit row written first): its latency percentiles are printed for a quiet baseline
and during the rotation. Synthetic values only.

Targets (issue 6): ≤ 3 s on SQLite and ≤ 10 s on PostgreSQL for 100,000 beneficiaries;
reads' p99 < 50 ms during the rotation. Nothing is asserted: a measurement to read.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, select, text  # noqa: E402

from shared.config import load_settings  # noqa: E402
from shared.crypto import KeyRing, new_dek, seal_field  # noqa: E402
from shared.db import make_engine, make_session_factory, utcnow  # noqa: E402
from shared.domain import audit, rotation  # noqa: E402
from shared.encrypted import Vault  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.models import Beneficiary, IdentityRecord, RecordKey  # noqa: E402

TARGETS = {"sqlite": 3.0, "postgresql": 10.0}  # seconds for 100,000 beneficiaries
READ_P99_TARGET = 0.050
PG_DATABASE = "icli_bench_rotation"


def seed(settings, keyring: KeyRing, people: int) -> None:
    """N people with their identity record and two wrapped data keys, in bulk (the
    domain functions would take minutes; what rotation reads is the same rows)."""
    engine = make_engine(settings)
    now = utcnow()
    with engine.begin() as conn:
        for start in range(0, people, 5000):
            count = min(5000, people - start)
            owners = [str(uuid.uuid4()) for _ in range(count)]
            conn.execute(insert(Beneficiary), [
                {"uuid": owner, "pseudonym": f"B{start + i:08d}", "created_at": now,
                 "last_activity_at": now} for i, owner in enumerate(owners)])
            ids = dict(conn.execute(select(Beneficiary.uuid, Beneficiary.id)
                                    .where(Beneficiary.uuid.in_(owners))).all())
            keys, records = [], []
            for i, owner in enumerate(owners):
                deks = {chain: new_dek() for chain in ("identity", "content")}
                for chain, dek in deks.items():
                    version, wrapped = keyring.wrap(chain, owner, 1, dek)
                    keys.append({"record_uuid": owner, "chain": chain, "dek_version": 1,
                                 "kek_version": version, "wrapped_dek": wrapped,
                                 "created_at": now})
                record_uuid = str(uuid.uuid4())
                records.append({
                    "uuid": record_uuid, "beneficiary_id": ids[owner], "created_at": now,
                    "index_version": 1,
                    "nom": seal_field(deks["identity"], table="identity_records",
                                      record_uuid=record_uuid, field="nom", dek_version=1,
                                      value=f"Synthetique{start + i}")})
            conn.execute(insert(RecordKey), keys)
            conn.execute(insert(IdentityRecord), records)
    engine.dispose()


def reader(env: dict, people: int, stop, ready, out) -> None:
    """Another process reading random people like a web request does."""
    settings = load_settings(env)
    sessions = make_session_factory(make_engine(settings))
    keyring = KeyRing.load(settings.keyring_path)
    chooser = random.Random(11)
    latencies: list[tuple[float, float]] = []
    ready.set()
    while not stop.is_set():
        record_id = chooser.randint(1, people)
        started = time.perf_counter()
        keyring.refresh()
        with sessions() as session:
            record = session.get(IdentityRecord, record_id)
            Vault(session, keyring, audit.CLI).open(record, "nom", purpose="bench")
            session.commit()  # the audit row
        latencies.append((time.monotonic(), time.perf_counter() - started))
        time.sleep(0.002)
    out.put(latencies)


def percentiles(samples: list[float]) -> str:
    if len(samples) < 2:
        return "—"
    cuts = statistics.quantiles(samples, n=100)
    return (f"p50 {statistics.median(samples) * 1000:5.1f} ms, p99 {cuts[98] * 1000:5.1f} ms, "
            f"max {max(samples) * 1000:5.1f} ms ({len(samples)} reads)")


def run(name: str, url: str, people: int, batch: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="icli-rot-"))
    env = {"ICLI_ENV": "development", "ICLI_INSTANCE": str(folder), "ICLI_DATABASE_URL": url,
           "ICLI_KEYRING": str(folder / "keyring.json"),
           "ICLI_SECRET_KEY": "bench-secret-key-" + "x" * 32}
    settings = load_settings(env)
    KeyRing.create_file(settings.keyring_path)
    keyring = KeyRing.load(settings.keyring_path)
    engine = make_engine(settings)
    upgrade(engine)
    started = time.perf_counter()
    seed(settings, keyring, people)
    print(f"{name}: seeded {people:,} people ({2 * people:,} data keys) in "
          f"{time.perf_counter() - started:.1f} s")
    sessions = make_session_factory(engine)

    context = multiprocessing.get_context("spawn")
    stop, ready, out = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=reader, args=(env, people, stop, ready, out))
    process.start()
    ready.wait(60)
    time.sleep(2.0)  # the quiet baseline
    with sessions() as session:
        for chain in ("identity", "content"):
            version = rotation.add(session, settings.keyring_path, keyring, chain, audit.CLI)
            rotation.promote(session, settings.keyring_path, keyring, chain, version,
                             audit.CLI)
        session.commit()
    window_start = time.monotonic()
    timings = {}
    for chain in ("identity", "content"):
        started = time.perf_counter()
        result = rotation.rotate(sessions, keyring, chain, audit.CLI, batch=batch)
        timings[chain] = (time.perf_counter() - started, result.rewrapped)
    window_end = time.monotonic()
    time.sleep(0.5)
    stop.set()
    latencies = out.get(timeout=60)
    process.join(30)
    engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)

    quiet = [d for t, d in latencies if t < window_start]
    during = [d for t, d in latencies if window_start <= t <= window_end]
    total = sum(t for t, _n in timings.values())
    rows = sum(n for _t, n in timings.values())
    for chain, (seconds, moved) in timings.items():
        print(f"  {chain:<8} {moved:>9,} keys rewrapped in {seconds:6.2f} s "
              f"({moved / seconds:>10,.0f} keys/s)")
    print(f"  both     {rows:>9,} keys in {total:6.2f} s: {people / total:,.0f} "
          f"beneficiaries/s")
    print(f"  reads, quiet:           {percentiles(quiet)}")
    print(f"  reads, during rotation: {percentiles(during)}")
    p99 = statistics.quantiles(during, n=100)[98] if len(during) > 1 else None
    return {"name": name, "seconds": total, "people": people, "p99": p99,
            "quiet_p50": statistics.median(quiet) if quiet else None}


def postgres_url(admin_url: str) -> str:
    """Create the bench database on the given server; returns its URL."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE}"))
        conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + PG_DATABASE


def drop_postgres(admin_url: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=rotation.DEFAULT_BATCH)
    parser.add_argument("--postgres", help="URL of a PostgreSQL server database to connect "
                                           "to first (the bench creates its own database)")
    args = parser.parse_args()
    results = []
    folder = Path(tempfile.mkdtemp(prefix="icli-rot-db-"))
    try:
        results.append(run("sqlite", f"sqlite:///{folder / 'bench.sqlite3'}", args.people,
                           args.batch))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.postgres:
        try:
            results.append(run("postgresql", postgres_url(args.postgres), args.people,
                               args.batch))
        finally:
            drop_postgres(args.postgres)
    print("\ntargets:")
    for result in results:
        limit = TARGETS[result["name"]] * result["people"] / 100_000
        print(f"  {result['name']}: {result['seconds']:.2f} s for {result['people']:,} "
              f"(target ≤ {limit:g} s) {'met' if result['seconds'] <= limit else 'MISSED'}; "
              f"reads p99 during rotation {result['p99'] * 1000 if result['p99'] else 0:.1f} "
              f"ms (target < 50 ms) "
              f"{'met' if result['p99'] and result['p99'] < READ_P99_TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
