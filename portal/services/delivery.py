"""Delivering submissions to the registry: claim, send, record. Called by the RQ job.

A job claims its rows with one conditional UPDATE (only rows still due move to in_flight, with
a lease), so a duplicate job, a second worker or a late retry claims nothing and sends nothing.
The registry write is idempotent by invoice key, so even a row sent twice (lease expired while
the first request was still running) registers once.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from ..domain.backoff import BackoffPolicy, retry_delay, should_give_up
from ..extensions import db
from ..models import (
    Alert,
    RegistryState,
    Submission,
    SubmissionAttempt,
    SubmissionState,
    utcnow,
)
from ..registry.client import DeliveryResult, Outcome
from . import audit, notify, outbox, review
from .outbox import DUE_STATES
from .registry_link import breaker, client, rate_limiter

log = logging.getLogger(__name__)

# Failures that say the registry (or the way to it) is unwell, as opposed to one bad invoice.
_LINK_FAILURES = {"timeout", "connection", "bad_response"}


@dataclass
class BatchReport:
    """What one delivery job did."""

    claimed: int = 0
    succeeded: int = 0
    retrying: int = 0
    dead: int = 0
    skipped_reason: str | None = None
    brought_forward: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def backoff_policy() -> BackoffPolicy:
    """The retry policy configured for this app."""
    c = current_app.config
    return BackoffPolicy(
        c["REGISTRY_BACKOFF_BASE"], c["REGISTRY_BACKOFF_CAP"], c["REGISTRY_MAX_ATTEMPTS"]
    )


def claim(submission_ids: list[int]) -> list[Submission]:
    """Move the still-due rows among ``submission_ids`` to in_flight with a lease; commit."""
    now = utcnow()
    lease = now + timedelta(seconds=current_app.config["REGISTRY_LEASE_SECONDS"])
    claimed_ids = db.session.scalars(
        update(Submission)
        .where(
            Submission.id.in_(submission_ids),
            Submission.state.in_(DUE_STATES),
            Submission.next_attempt_at <= now,
        )
        .values(
            state=SubmissionState.IN_FLIGHT,
            attempts=Submission.attempts + 1,
            lease_expires_at=lease,
            updated_at=now,
        )
        .returning(Submission.id)
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed_ids:
        db.session.commit()
        return []
    audit.record_many(
        [
            ("submission.in_flight", "submission", i, {"state": "due"}, {"state": "in_flight"})
            for i in claimed_ids
        ]
    )
    db.session.commit()
    return db.session.scalars(
        select(Submission)
        .where(Submission.id.in_(claimed_ids))
        .options(selectinload(Submission.invoice))
        .order_by(Submission.id)
    ).all()


def _release(submissions: list[Submission], reason: str) -> None:
    """Give claimed rows back untouched (no attempt spent): the breaker is open."""
    for s in submissions:
        s.state = SubmissionState.RETRY_SCHEDULED
        s.attempts -= 1
        s.lease_expires_at = None
        s.job_id = None
        s.next_attempt_at = utcnow()
    audit.record_many(
        [
            (
                "submission.released",
                "submission",
                s.id,
                {"state": "in_flight"},
                {"state": s.state, "reason": reason},
            )
            for s in submissions
        ]
    )
    db.session.commit()


def deliver_batch(submission_ids: list[int]) -> BatchReport:
    """Deliver these submissions (one registry request) and record every outcome."""
    report = BatchReport()
    link = breaker()
    submissions = claim(submission_ids)
    report.claimed = len(submissions)
    if not submissions:
        report.skipped_reason = "nothing due (already delivered, or claimed elsewhere)"
        return report
    if not link.allow_request():
        _release(submissions, "registry breaker open")
        report.skipped_reason = "registry breaker open"
        return report
    if not rate_limiter().acquire():
        _release(submissions, "registry rate limit busy")
        report.skipped_reason = "rate limit busy"
        return report

    payloads = [s.invoice.registry_payload() for s in submissions]
    started = utcnow()
    t0 = time.perf_counter()
    registry = client()
    results = (
        registry.put_batch(payloads) if len(payloads) > 1 else [registry.put_invoice(payloads[0])]
    )
    duration_ms = int((time.perf_counter() - t0) * 1000)

    recovered = False
    link_failed = all(r.outcome is Outcome.TRANSIENT and _is_link_failure(r) for r in results)
    if link_failed:
        if link.record_failure():
            _raise_alert(
                "breaker_open",
                None,
                "The registry is not answering; deliveries are "
                "paused and will resume automatically after a successful probe.",
            )
    else:
        was_closed = link.status().state == "closed"
        recovered = link.record_success()
        if not was_closed:
            _clear_alerts("breaker_open")

    _record_results(submissions, results, started, duration_ms, report)
    if recovered:
        # The registry is well again: what the trouble postponed goes now, not after backoff.
        report.brought_forward = outbox.recover()
    return report


def _is_link_failure(result: DeliveryResult) -> bool:
    kind = result.error_kind or ""
    return kind in _LINK_FAILURES or kind.startswith("http_5")


def _record_results(submissions, results, started, duration_ms, report: BatchReport) -> None:
    by_key = {r.key: r for r in results}
    policy = backoff_policy()
    now = utcnow()
    changes = []
    attempts = []
    for s in submissions:
        result = by_key.get(s.invoice.key) or _missing_result(s.invoice.key)
        report.outcomes[result.outcome.value] = report.outcomes.get(result.outcome.value, 0) + 1
        attempts.append(
            SubmissionAttempt(
                submission_id=s.id,
                started_at=started,
                duration_ms=duration_ms,
                outcome=result.outcome.value,
                status_code=result.status_code,
                error_kind=result.error_kind,
                message=(result.message or "")[:500] or None,
            )
        )
        before = {"state": SubmissionState.IN_FLIGHT, "attempts": s.attempts}
        s.lease_expires_at = None
        s.job_id = None
        invoice = s.invoice
        if result.outcome is Outcome.SUCCESS:
            s.state = SubmissionState.SUCCEEDED
            s.finished_at = now
            s.last_error_kind = s.last_error_message = None
            invoice.registry_state = RegistryState.REGISTERED
            invoice.registry_id = result.registry_id
            invoice.registered_at = result.registered_at or now
            report.succeeded += 1
            after = {"state": s.state, "registry_id": result.registry_id, "created": result.created}
        elif result.outcome is Outcome.TRANSIENT and not should_give_up(s.attempts, policy):
            s.state = SubmissionState.RETRY_SCHEDULED
            delay = retry_delay(s.attempts, policy, random.random(), result.retry_after)
            s.next_attempt_at = now + timedelta(seconds=delay)
            s.last_error_kind, s.last_error_message = result.error_kind, result.message[:500]
            report.retrying += 1
            after = {
                "state": s.state,
                "error": result.error_kind,
                "next_attempt_at": s.next_attempt_at,
            }
        else:
            s.state = SubmissionState.DEAD
            s.finished_at = now
            s.last_error_kind, s.last_error_message = result.error_kind, result.message[:500]
            invoice.registry_state = (
                RegistryState.CONFLICT if result.error_kind == "conflict" else RegistryState.FAILED
            )
            report.dead += 1
            after = {"state": s.state, "error": result.error_kind}
            log.warning(
                "submission %s for invoice %s is a dead letter: %s (%s)",
                s.id,
                invoice.key,
                result.error_kind,
                result.message,
            )
            _raise_alert(
                "dead_letter",
                s.id,
                f"Invoice {invoice.key} could not be registered: {result.message}",
            )
            notify.dead_letter(invoice.key, result.message, s.attempts)
        changes.append(("submission." + s.state, "submission", s.id, before, after))
    db.session.add_all(attempts)
    audit.record_many(changes)
    # Read before the commit: it expires every row, and reading them after it would reload
    # each one with its own SELECT (100 round trips per batch).
    registered = [s.invoice_id for s in submissions if s.state == SubmissionState.SUCCEEDED]
    db.session.commit()
    if registered:
        review.resolve_registered(registered)  # cases that waited for this registration


def _missing_result(key: str) -> DeliveryResult:
    # The registry's batch answer left this invoice out: treat it as a transient failure.
    return DeliveryResult(
        key=key,
        outcome=Outcome.TRANSIENT,
        error_kind="bad_response",
        message="The registry did not answer for this invoice.",
    )


def _raise_alert(kind: str, submission_id: int | None, message: str) -> None:
    if kind == "breaker_open":
        open_alert = db.session.scalar(
            select(Alert).where(Alert.kind == kind, Alert.cleared_at.is_(None)).limit(1)
        )
        if open_alert is not None:
            return
        notify.registry_down(utcnow())
    # Added to the session; it commits with the outcomes it describes.
    db.session.add(
        Alert(
            kind=kind,
            severity="critical" if kind == "breaker_open" else "warning",
            subject_type="submission" if submission_id else None,
            subject_id=str(submission_id) if submission_id else None,
            message=message,
        )
    )


def _clear_alerts(kind: str) -> None:
    # The condition is over (the registry answers again); the rows stay as history.
    for alert in db.session.scalars(
        select(Alert).where(Alert.kind == kind, Alert.cleared_at.is_(None))
    ):
        alert.cleared_at = utcnow()
