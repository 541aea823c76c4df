"""Real worker processes: `flask worker` killed mid-request, and the chaos check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Submission, SubmissionState, utcnow
from portal.services import outbox
from tests import factories
from tests.conftest import ROOT
from tests.factories import run_workers


def worker_env(app, database_url, redis_url, tmp_path, **extra) -> dict:
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "SECRET_KEY": "worker-test-secret",
        "PORTAL_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REGISTRY_URL": app.config["REGISTRY_URL"],
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_for(predicate, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_worker_killed_mid_request_is_recovered_by_the_sweeper(
    delivery_app, registry_sim, database_url, redis_url, tmp_path
):
    registry_sim.state.set_faults({"latency_ms": 4000})
    (invoice,) = factories.issued()
    submission_id = invoice.submissions[0].id
    env = worker_env(
        delivery_app,
        database_url,
        redis_url,
        tmp_path,
        REGISTRY_LEASE_SECONDS=1,
        REGISTRY_READ_TIMEOUT=10,
        REGISTRY_RATE_LIMIT=0,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def in_flight():
        db.session.expire_all()
        return db.session.get(Submission, submission_id).state == SubmissionState.IN_FLIGHT

    assert wait_for(in_flight), "the worker never claimed the submission"
    # The request is now waiting on the registry: kill the worker in the middle of it.
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    registry_sim.state.set_faults({"latency_ms": 0})
    # The 1 s lease runs out: the dead worker's claim is made that old instead of waited for.
    submission = db.session.get(Submission, submission_id)
    submission.lease_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    report = outbox.sweep()
    assert report.leases_reclaimed == 1 and report.dispatched == 1
    run_workers()
    submission = db.session.get(Submission, submission_id)
    assert submission.state == SubmissionState.SUCCEEDED
    assert db.session.scalar(select(Submission.attempts).where(Submission.id == submission_id)) == 2
    assert registry_sim.state.stats()["records"] == 1


@pytest.mark.slow
def test_chaos_two_thousand_invoices_registered_exactly_once(database_url, redis_url, app):
    """bench/chaos.py at the size the issue asks of the suite (the bench runs 10,000)."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "chaos.py"),
            "--invoices",
            "2000",
            "--reset",
            "--deadline",
            "300",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[FAIL]" not in result.stdout
    assert "registry records            2000" in result.stdout
