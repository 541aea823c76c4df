"""Registry delivery through the outbox: real Redis, the simulator over real HTTP, RQ workers."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Alert, AuditEvent, RegistryState, Submission, SubmissionState, utcnow
from portal.queue import get_queue, redis_connection
from portal.services import delivery, outbox
from portal.services.registry_link import breaker
from tests import factories
from tests.factories import run_workers
from workers import queues


def make_due(*submissions) -> None:
    for s in submissions:
        s.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()


def states() -> dict[str, int]:
    return outbox.backlog_counts()


def test_issued_invoice_is_registered_once(delivery_app, registry_sim):
    (invoice,) = factories.issued()
    assert get_queue(queues.REGISTRY).count == 1  # enqueued only after the commit
    run_workers()
    db.session.refresh(invoice)
    assert invoice.registry_state == RegistryState.REGISTERED
    assert invoice.registry_id and invoice.registered_at.tzinfo is not None
    stats = registry_sim.state.stats()
    assert stats["records"] == 1 and stats["duplicates"] == 0
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["submission.queued", "submission.in_flight", "submission.succeeded"]


def test_a_rolled_back_transaction_enqueues_nothing(delivery_app):
    row = factories.invoice()
    db.session.flush()
    outbox.queue_delivery(row)
    db.session.rollback()
    assert get_queue(queues.REGISTRY).count == 0


def test_many_invoices_travel_in_batches(delivery_app, registry_sim):
    delivery_app.config["REGISTRY_BATCH_SIZE"] = 50
    factories.issued(120)
    assert get_queue(queues.REGISTRY).count == 3
    run_workers()
    assert states() == {"succeeded": 120}
    assert registry_sim.state.stats()["records"] == 120


def test_transient_errors_are_retried_until_success(delivery_app, registry_sim):
    registry_sim.state.set_faults({"error_rate": 1.0})
    (invoice,) = factories.issued()
    run_workers()
    submission = invoice.submissions[0]
    db.session.refresh(submission)
    assert submission.state == SubmissionState.RETRY_SCHEDULED
    assert submission.attempts == 1 and submission.last_error_kind.startswith("http_5")
    registry_sim.state.set_faults({"error_rate": 0.0})
    make_due(submission)
    outbox.sweep()
    run_workers()
    db.session.refresh(submission)
    assert submission.state == SubmissionState.SUCCEEDED and submission.attempts == 2
    assert [a.outcome for a in submission.attempt_log] == ["transient", "success"]


def test_exhausted_retries_make_a_dead_letter(delivery_app, registry_sim):
    delivery_app.config["REGISTRY_MAX_ATTEMPTS"] = 2
    delivery_app.config["BREAKER_FAILURE_THRESHOLD"] = 100
    registry_sim.state.set_faults({"error_rate": 1.0})
    (invoice,) = factories.issued()
    run_workers()
    make_due(invoice.submissions[0])
    outbox.sweep()
    run_workers()
    db.session.refresh(invoice)
    assert invoice.submissions[0].state == SubmissionState.DEAD
    assert invoice.registry_state == RegistryState.FAILED


def test_invalid_invoice_is_dead_at_once_with_an_alert(delivery_app, registry_sim):
    registry_sim.state.set_faults({"reject_rate": 1.0})
    (invoice,) = factories.issued()
    run_workers()
    db.session.refresh(invoice)
    submission = invoice.submissions[0]
    assert submission.state == SubmissionState.DEAD and submission.attempts == 1
    assert invoice.registry_state == RegistryState.FAILED
    alert = db.session.scalar(select(Alert))
    assert alert.kind == "dead_letter" and invoice.key in alert.message


def test_conflicting_registration_goes_to_staff(delivery_app, registry_sim):
    (invoice,) = factories.issued()
    payload = invoice.registry_payload() | {"buyer_name": "另一家公司"}
    from portal.registry import RegistryClient

    RegistryClient(registry_sim.url).put_invoice(payload)
    run_workers()
    db.session.refresh(invoice)
    assert invoice.registry_state == RegistryState.CONFLICT
    assert invoice.submissions[0].last_error_kind == "conflict"


def test_rate_limit_honours_retry_after(delivery_app, registry_sim):
    import requests

    registry_sim.state.set_faults({"rate_limit": 1})
    for _ in range(3):  # the simulator's one-second window may roll over: try a few times
        (invoice,) = factories.issued()
        requests.get(f"{registry_sim.url}/v1/invoices/011001900111-99999999", timeout=2)
        before = utcnow()
        run_workers()
        submission = invoice.submissions[0]
        db.session.refresh(submission)
        if submission.state == SubmissionState.RETRY_SCHEDULED:
            break
    assert submission.last_error_kind == "rate_limited"
    retry_after = submission.attempt_log[-1]
    assert retry_after.status_code == 429
    # Backoff alone would wait at most 0.01 s here; the registry asked for at least a second.
    assert submission.next_attempt_at >= before + timedelta(seconds=0.9)


def test_two_jobs_for_one_submission_register_once(delivery_app, registry_sim):
    (invoice,) = factories.issued()
    submission_id = invoice.submissions[0].id
    first = delivery.deliver_batch([submission_id])
    second = delivery.deliver_batch([submission_id])
    assert first.succeeded == 1 and second.claimed == 0
    run_workers()  # the job enqueued at commit finds nothing to do either
    stats = registry_sim.state.stats()
    assert stats["records"] == 1 and stats["duplicates"] == 0


def test_duplicate_enqueues_collapse_to_one_job_id(delivery_app):
    (invoice,) = factories.issued()
    s = invoice.submissions[0]
    assert s.job_id == outbox.job_id_for([(s.id, s.attempts)])
    outbox.enqueue_jobs([(s.job_id, [s.id])])
    assert len(set(get_queue(queues.REGISTRY).job_ids)) == 1


def test_redis_flush_is_recovered_by_the_sweeper(delivery_app, registry_sim):
    factories.issued(30)
    redis_connection().flushdb()
    run_workers()
    assert states() == {"queued": 30}
    report = outbox.sweep()
    assert report.dispatched == 30
    run_workers()
    assert states() == {"succeeded": 30}
    assert registry_sim.state.stats()["records"] == 30


def test_a_job_popped_by_a_worker_that_died_at_once_is_dispatched_again(delivery_app, registry_sim):
    """A worker killed between taking a job off the queue and starting it leaves the job
    "queued" in Redis but in no queue: nothing would ever run it (seen in the chaos run)."""
    factories.issued(3)
    queue = get_queue(queues.REGISTRY)
    (job_id,) = queue.job_ids
    redis_connection().lpop(queue.key)  # taken off the queue, never started
    assert queue.fetch_job(job_id).get_status() == "queued"
    assert outbox.sweep().dispatched == 3  # (the suite's OUTBOX_ENQUEUE_GRACE is 0)
    run_workers()
    assert states() == {"succeeded": 3}


def test_queued_jobs_waiting_their_turn_are_left_alone(delivery_app, registry_sim):
    factories.issued(3)
    assert outbox.sweep().dispatched == 0  # still in the queue: it will run
    assert len(get_queue(queues.REGISTRY).job_ids) == 1


def test_rows_committed_while_redis_is_down_are_not_lost(delivery_app, registry_sim):
    good_url = delivery_app.config["REDIS_URL"]
    delivery_app.extensions.pop("portal.redis", None)
    delivery_app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    factories.issued(3)  # the enqueue fails quietly; the rows are committed
    delivery_app.extensions.pop("portal.redis", None)
    delivery_app.config["REDIS_URL"] = good_url
    assert outbox.sweep().dispatched == 3
    run_workers()
    assert states() == {"succeeded": 3}


def test_expired_lease_is_taken_back(delivery_app, registry_sim):
    (invoice,) = factories.issued()
    s = invoice.submissions[0]
    delivery.claim([s.id])  # as if a worker claimed it and then died
    redis_connection().flushdb()
    assert outbox.sweep().leases_reclaimed == 0  # lease still running
    s.lease_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    report = outbox.sweep()
    assert report.leases_reclaimed == 1 and report.dispatched == 1
    run_workers()
    db.session.refresh(s)
    assert s.state == SubmissionState.SUCCEEDED and s.attempts == 2
    assert "submission.lease_expired" in db.session.scalars(select(AuditEvent.action)).all()


def test_breaker_opens_keeps_backlog_in_database_and_closes(delivery_app, registry_sim):
    delivery_app.config["BREAKER_FAILURE_THRESHOLD"] = 2
    delivery_app.config["BREAKER_COOLDOWN_SECONDS"] = 30
    delivery_app.config["REGISTRY_BATCH_SIZE"] = 1
    registry_sim.state.set_faults({"outage": True})
    factories.issued(5)
    run_workers()
    assert breaker().status().state == "open"
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 1
    counts = states()
    # Two requests failed and opened the breaker; the rest were never sent.
    assert counts["retry_scheduled"] == 5
    assert db.session.scalar(select(func.sum(Submission.attempts))) == 2
    for s in db.session.scalars(select(Submission)):
        s.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert outbox.sweep().dispatched == 0  # open: nothing leaves the database

    registry_sim.state.set_faults({"outage": False})
    # Let the cooldown run out without waiting 30 s: move its end into the past.
    redis_connection().set("portal:registry:open_until", time.time() - 1)
    probe = outbox.sweep()
    assert probe.breaker == "half_open" and probe.dispatched == 1
    run_workers()
    assert breaker().status().state == "closed"
    assert db.session.scalar(select(Alert)).cleared_at is not None
    outbox.sweep()
    run_workers()
    assert states() == {"succeeded": 5}


def test_dead_letters_can_be_retried(delivery_app, registry_sim, runner=None):
    registry_sim.state.set_faults({"reject_rate": 1.0})
    (invoice,) = factories.issued()
    run_workers()
    registry_sim.state.set_faults({"reject_rate": 0.0})
    dead = outbox.dead_letters()
    assert [d.invoice_id for d in dead] == [invoice.id]
    fresh = outbox.retry_dead([dead[0].id], actor="test")
    assert len(fresh) == 1 and fresh[0].reason == "retry"
    run_workers()
    db.session.refresh(invoice)
    assert invoice.registry_state == RegistryState.REGISTERED
    assert [s.state for s in invoice.submissions] == ["dead", "succeeded"]


def test_status_for_people(delivery_app, registry_sim):
    registry_sim.state.set_faults({"error_rate": 1.0})
    (invoice,) = factories.issued()
    run_workers()
    status = outbox.status_for(invoice)
    assert status.state == "pending" and status.attempts == 1
    assert status.next_attempt_at is not None and status.last_error
    assert "http" not in status.last_error.lower()  # no internal details for customers
