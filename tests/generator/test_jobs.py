"""generator/jobs.py: the lease a running job keeps while its worker lives."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

from generator import runtime
from generator.jobs import lease_kept
from shared.db import make_session_factory
from shared.domain import documents
from tests.helpers import wait_for


def test_a_job_that_outlives_its_lease_keeps_it_and_loses_it_once_its_worker_stops(
        settings, engine, world, db_session):
    rt = runtime.init(dataclasses.replace(settings, job_lease_seconds=1))
    lease = timedelta(seconds=1)
    job = documents.request_document(db_session, world["meeting"], "agenda", None)
    db_session.commit()
    claimed = documents.claim(db_session, job.uuid, lease=lease)
    db_session.commit()
    other_worker = make_session_factory(engine)

    def taken_over() -> bool:
        with other_worker() as session:
            taken = documents.claim(session, job.uuid, lease=lease) is not None
            session.commit()
            return taken

    job_id, attempt = claimed.id, claimed.attempts
    with lease_kept(rt, lambda session, lease: documents.extend_lease(session, job_id, attempt,
                                                                       lease)):
        started = time.monotonic()
        while time.monotonic() - started < 3:  # three leases long: a long PDF conversion
            assert not taken_over()
            time.sleep(0.2)
    # Its worker gone (nothing extends the lease any more), another takes the job over
    wait_for(taken_over, timeout=10)
    with other_worker() as session:
        assert not documents.extend_lease(session, job_id, attempt, lease)  # the old run's
