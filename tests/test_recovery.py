"""When the registry is well again, the retries its trouble scheduled go at once, not after
their backoff; retries for other reasons keep their course. (issue #19 §4)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, RegistryState, Submission, SubmissionState, utcnow
from portal.queue import redis_connection
from portal.services import outbox
from portal.services.registry_link import CircuitBreaker, breaker
from tests import factories
from tests.conftest import _simulator_app
from tests.factories import run_workers


@pytest.fixture
def outage_app(app_factory, registry_sim, monkeypatch):
    """Production-like backoff (an hour), a breaker that opens after two failures and probes
    at once, and full-jitter delays near their ceiling (so every retry is far away)."""
    monkeypatch.setattr("portal.services.delivery.random.random", lambda: 0.999)
    app = _simulator_app(
        app_factory,
        registry_sim,
        REGISTRY_BACKOFF_BASE=3600.0,
        REGISTRY_BACKOFF_CAP=3600.0,
        REGISTRY_BATCH_SIZE=5,
        BREAKER_FAILURE_THRESHOLD=2,
        BREAKER_COOLDOWN_SECONDS=0.001,
        BREAKER_RECOVERY_SUCCESSES=3,
    )
    with app.app_context():
        yield app


def test_a_backlog_built_during_an_outage_drains_as_soon_as_the_registry_is_back(
    outage_app, registry_sim
):
    registry_sim.state.set_faults({"outage": True})
    backlog = factories.issued(20)
    run_workers()
    waiting = db.session.scalars(select(Submission)).all()
    assert {s.state for s in waiting} == {SubmissionState.RETRY_SCHEDULED}
    assert all(s.next_attempt_at > utcnow() + timedelta(minutes=30) for s in waiting)
    # A row the registry asked to slow down (429) keeps its own course.
    (slowed,) = factories.issued()
    slowed_row = slowed.submissions[0]
    slowed_row.state = SubmissionState.RETRY_SCHEDULED
    slowed_row.last_error_kind = "rate_limited"
    slowed_row.job_id = None
    later = utcnow() + timedelta(hours=1)
    slowed_row.next_attempt_at = later
    db.session.commit()

    registry_sim.state.set_faults({"outage": False})
    factories.issued()  # the next delivery is the breaker's probe; its success closes it
    run_workers()  # no sweep, no waiting: recovery dispatches the backlog itself

    db.session.expire_all()
    assert all(i.registry_state == RegistryState.REGISTERED for i in backlog)
    assert registry_sim.state.stats()["records"] == 21
    db.session.refresh(slowed_row)
    assert slowed_row.state == SubmissionState.RETRY_SCHEDULED
    assert slowed_row.next_attempt_at == later
    brought = db.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "submission.brought_forward")
    )
    assert brought == 20
    assert breaker().status().state == "closed"


def test_bring_forward_touches_only_outage_retries(outage_app):
    now = utcnow()
    kinds = ["timeout", "connection", "bad_response", "http_503", "rate_limited", "invalid"]
    rows = []
    for kind in kinds:
        (invoice,) = factories.issued()
        row = invoice.submissions[0]
        row.state = SubmissionState.DEAD if kind == "invalid" else SubmissionState.RETRY_SCHEDULED
        row.last_error_kind = kind
        row.next_attempt_at = now + timedelta(hours=2)
        rows.append(row)
    db.session.commit()
    assert outbox.bring_forward_outage_retries(now) == 4
    db.session.expire_all()
    due = {r.last_error_kind for r in rows if r.next_attempt_at <= now}
    assert due == {"timeout", "connection", "bad_response", "http_503"}
    assert {r.state for r in rows if r.last_error_kind == "invalid"} == {SubmissionState.DEAD}


def test_the_breaker_says_recovered_once_after_a_probe_or_a_run_of_successes(outage_app):
    link = CircuitBreaker(redis_connection(), threshold=2, cooldown=30, recovery_successes=3)
    assert link.record_success() is False  # never unwell: nothing to recover from
    link.record_failure(now=1000.0)
    link.record_failure(now=1000.0)
    assert link.status(now=1001.0).state == "open"
    assert link.record_success() is True  # the probe closed it
    assert link.record_success() is False  # only once
    link.record_failure(now=2000.0)  # one failure, breaker still closed
    assert [link.record_success() for _ in range(4)] == [False, False, True, False]


def test_a_quiet_sweep_sends_one_batch_of_outage_retries_as_a_probe(outage_app, registry_sim):
    """Faults over but nothing due (every retry far away): the sweep sends the first batch
    early; with enough successes in a row the rest follow without waiting."""
    outage_app.config["BREAKER_FAILURE_THRESHOLD"] = 100  # errors, not an outage: stays closed
    registry_sim.state.set_faults({"error_rate": 1.0})
    factories.issued(15)
    run_workers()
    assert outbox.backlog_counts() == {"retry_scheduled": 15}
    registry_sim.state.set_faults({"error_rate": 0.0})
    outage_app.config["BREAKER_RECOVERY_SUCCESSES"] = 1  # the probe's success is enough here
    report = outbox.sweep()
    assert report.dispatched == 5 and report.breaker == "closed"  # one batch (of 5)
    run_workers()  # the probe succeeds: recovery brings the other ten forward and sends them
    assert outbox.backlog_counts() == {"succeeded": 15}
