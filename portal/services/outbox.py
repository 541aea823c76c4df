"""The outbox: every delivery to the registry is a Submission row before it is a job.

- ``queue_delivery`` adds a row in the caller's transaction (with the invoice it delivers).
- When that transaction commits, its rows are handed to RQ (``after_commit``); if Redis is
  down at that moment nothing is lost: the rows are due and the sweeper dispatches them.
- ``sweep`` (run every few seconds by the workers, or ``flask outbox sweep``) takes back
  expired leases and dispatches due rows that have no live job, respecting the breaker.
- ``retry_dead`` puts dead letters back in line as new submissions.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from rq.job import Job
from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Invoice, RegistryState, Submission, SubmissionState, utcnow
from ..queue import enqueue_after_commit, enqueue_now, get_queue, redis_connection
from . import audit
from .errors import ServiceError

log = logging.getLogger(__name__)

DUE_STATES = (SubmissionState.QUEUED, SubmissionState.RETRY_SCHEDULED)
_NEW = "portal.outbox.new_submissions"
DELIVER_JOB = "workers.registry.deliver"


def queue_delivery(invoice: Invoice, reason: str = "issued", actor=None) -> Submission:
    """Add a submission for ``invoice`` to the current transaction; it is sent after commit."""
    return queue_deliveries([invoice], reason, actor)[0]


def queue_deliveries(
    invoices: list[Invoice], reason: str = "issued", actor=None
) -> list[Submission]:
    """Add a submission for each invoice to the current transaction (one audit append)."""
    now = utcnow()
    submissions = []
    for invoice in invoices:
        invoice.registry_state = RegistryState.PENDING
        submissions.append(
            Submission(
                invoice=invoice, state=SubmissionState.QUEUED, reason=reason, next_attempt_at=now
            )
        )
    db.session.add_all(submissions)
    db.session.flush()
    audit.record_many(
        [
            (
                "submission.queued",
                "submission",
                s.id,
                None,
                {"state": s.state, "invoice": s.invoice.key, "reason": reason},
            )
            for s in submissions
        ],
        actor=actor,
    )
    # Planned at commit, so that invoices issued together travel together in batches.
    db.session.info.setdefault(_NEW, []).extend(submissions)
    return submissions


def job_id_for(rows: list[tuple[int, int]]) -> str:
    """A deterministic RQ job id for delivering these (submission id, attempts) pairs.

    The same rows at the same attempt always give the same id, so a job enqueued twice (two
    sweepers, a retried enqueue) is one job in Redis and one delivery.
    """
    digest = hashlib.sha1(  # noqa: S324 - an identifier, not a security boundary
        ",".join(f"{i}:{a}" for i, a in sorted(rows)).encode()
    ).hexdigest()[:16]
    return f"deliver-{min(i for i, _ in rows)}-{digest}"


def _plan_dispatch(session: Session, submissions: list[Submission]) -> None:
    """Give rows their job ids now (in the transaction); enqueue the jobs after commit."""
    size = current_app.config["REGISTRY_BATCH_SIZE"]
    now = utcnow()
    for start in range(0, len(submissions), size):
        chunk = submissions[start : start + size]
        job_id = job_id_for([(s.id, s.attempts) for s in chunk])
        for s in chunk:
            s.job_id = job_id
            s.enqueued_at = now
        enqueue_after_commit(session, DELIVER_JOB, [s.id for s in chunk], job_id=job_id)


def enqueue_jobs(planned: list[tuple[str, list[int]]]) -> int:
    """Hand (job id, submission ids) deliveries to RQ now; returns how many were enqueued (0
    if Redis is down)."""
    return enqueue_now([(DELIVER_JOB, (ids,), job_id) for job_id, ids in planned])


@event.listens_for(Session, "before_commit")
def _plan_new_submissions(session: Session) -> None:
    new = session.info.pop(_NEW, None)
    if new:
        _plan_dispatch(session, new)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_NEW, None)


@dataclass
class SweepReport:
    """What one sweep did, for the log and the CLI."""

    leases_reclaimed: int = 0
    dispatched: int = 0
    jobs: int = 0
    breaker: str = "closed"
    notes: list[str] = field(default_factory=list)


def reclaim_expired_leases(now: datetime | None = None) -> int:
    """Rows in flight past their lease (a worker died mid-request) become due again.

    The registry write is idempotent, so delivering such a row again is always safe.
    """
    now = now or utcnow()
    rows = db.session.scalars(
        select(Submission)
        .where(Submission.state == SubmissionState.IN_FLIGHT, Submission.lease_expires_at < now)
        .with_for_update(skip_locked=True)
        .limit(current_app.config["OUTBOX_DISPATCH_LIMIT"])
    ).all()
    changes = []
    for s in rows:
        s.state = SubmissionState.RETRY_SCHEDULED
        s.next_attempt_at = now
        s.lease_expires_at = None
        s.job_id = None
        changes.append(
            (
                "submission.lease_expired",
                "submission",
                s.id,
                {"state": SubmissionState.IN_FLIGHT},
                {"state": s.state},
            )
        )
    if changes:
        audit.record_many(changes)
    db.session.commit()
    return len(rows)


def _live_jobs(job_ids: set[str], stale_before: datetime) -> set[str]:
    """Which of these jobs will still deliver their rows.

    A scheduled job will, and a queued one that is still in its queue. A queued job missing
    from its queue was taken by a worker that died before starting it (RQ marks a job started
    only after taking it off the queue): nothing would ever run it. A started job claims its
    rows within moments of starting, so one that started before ``stale_before`` and left its
    rows unclaimed belongs to a worker that died (SIGKILL, OOM). Their rows are dispatched
    again; a duplicate delivery finds nothing left to claim.
    """
    if not job_ids:
        return set()
    connection = redis_connection()
    jobs = [j for j in Job.fetch_many(list(job_ids), connection=connection) if j is not None]
    statuses = {job.id: job.get_status(refresh=False) for job in jobs}
    queued = [job for job in jobs if statuses[job.id] == "queued"]
    with connection.pipeline(transaction=False) as pipe:
        for job in queued:
            pipe.lpos(get_queue(job.origin).key, job.id)
        in_queue = {
            job.id for job, at in zip(queued, pipe.execute(), strict=True) if at is not None
        }
    alive = set()
    for job in jobs:
        status = statuses[job.id]
        waiting = status in ("scheduled", "deferred") or job.id in in_queue
        running = status == "started" and job.started_at and job.started_at >= stale_before
        if waiting or running:
            alive.add(job.id)
    return alive


def dispatch_due(now: datetime | None = None, limit: int | None = None) -> int:
    """Dispatch due rows that have no live job; returns how many rows were dispatched."""
    now = now or utcnow()
    limit = limit or current_app.config["OUTBOX_DISPATCH_LIMIT"]
    grace = now - timedelta(seconds=current_app.config["OUTBOX_ENQUEUE_GRACE"])
    candidates = db.session.scalars(
        select(Submission)
        .where(
            Submission.state.in_(DUE_STATES),
            Submission.next_attempt_at <= now,
            or_(Submission.job_id.is_(None), Submission.enqueued_at < grace),
        )
        .order_by(Submission.next_attempt_at, Submission.id)
        .with_for_update(skip_locked=True)
        .limit(limit)
    ).all()
    alive = _live_jobs({s.job_id for s in candidates if s.job_id}, grace)
    lost = [s for s in candidates if s.job_id not in alive]
    _plan_dispatch(db.session, lost)
    db.session.commit()  # after_commit enqueues the planned jobs
    return len(lost)


def sweep(now: datetime | None = None) -> SweepReport:
    """Take back expired leases and dispatch what is due; safe to run anywhere, concurrently.

    While the registry breaker is open the backlog stays in the database; once its cooldown is
    over, a single row is sent as the probe, and the rest follows when the probe succeeds.
    """
    from .registry_link import breaker

    report = SweepReport()
    report.leases_reclaimed = reclaim_expired_leases(now)
    status = breaker().status()
    report.breaker = status.state
    if status.state == "open":
        report.notes.append("registry breaker open: backlog kept in the database")
        return report
    limit = 1 if status.state == "half_open" else None
    report.dispatched = dispatch_due(now, limit=limit)
    # Nothing else is going out to tell whether the registry is well again: send the next
    # batch of its retries now, as a probe (one batch a sweep); enough successes in a row
    # bring the rest forward (``recover``).
    if (
        status.state == "closed"
        and not report.dispatched
        and _registry_unwell()
        and bring_forward_outage_retries(now, limit=current_app.config["REGISTRY_BATCH_SIZE"])
    ):
        report.dispatched = dispatch_due(now)
        report.notes.append("registry unwell lately: one batch of its retries sent early")
    return report


def _registry_unwell() -> bool:
    from .registry_link import breaker

    return breaker().unwell()


# Error kinds that say the registry, or the way to it, was unwell (not this invoice): retries
# they scheduled are brought forward once it is well again. 429 keeps its Retry-After; 422
# and 409 are dead letters already.
OUTAGE_ERRORS = ("timeout", "connection", "bad_response")


def _outage_retries(now: datetime):
    return (
        Submission.state == SubmissionState.RETRY_SCHEDULED,
        Submission.next_attempt_at > now,
        or_(
            Submission.last_error_kind.in_(OUTAGE_ERRORS),
            Submission.last_error_kind.startswith("http_5", autoescape=True),
        ),
    )


def bring_forward_outage_retries(
    now: datetime | None = None, limit: int | None = None, actor=None
) -> int:
    """Make the retries that an outage or a registry failure scheduled due now (all of them,
    or the ``limit`` that would have gone first).

    Called when the registry is well again (``recover``), or to probe whether it is
    (``sweep``); rows that failed for their own reasons keep their course. Returns how many
    rows were brought forward.
    """
    now = now or utcnow()
    chosen = update(Submission).where(*_outage_retries(now))
    if limit is not None:
        first = (
            select(Submission.id)
            .where(*_outage_retries(now))
            .order_by(Submission.next_attempt_at, Submission.id)
            .limit(limit)
        )
        chosen = update(Submission).where(Submission.id.in_(first.scalar_subquery()))
    ids = db.session.scalars(
        chosen.values(next_attempt_at=now, job_id=None, updated_at=now)
        .returning(Submission.id)
        .execution_options(synchronize_session=False)
    ).all()
    if ids:
        audit.record_many(
            [
                (
                    "submission.brought_forward",
                    "submission",
                    i,
                    {"state": SubmissionState.RETRY_SCHEDULED},
                    {"state": SubmissionState.RETRY_SCHEDULED, "next_attempt_at": now},
                )
                for i in ids
            ],
            actor=actor,
        )
    db.session.commit()
    return len(ids)


def recover(now: datetime | None = None) -> int:
    """The registry is well again: bring the outage's retries forward and dispatch them now
    (the delivery jobs keep to ``REGISTRY_RATE_LIMIT``). Returns the rows brought forward."""
    now = now or utcnow()
    brought = bring_forward_outage_retries(now)
    if brought:
        log.warning("registry well again: %d retries brought forward", brought)
        dispatch_due(now)
    return brought


def dead_letters(error_kind: str | None = None, limit: int = 200) -> list[Submission]:
    """Dead submissions, newest first, optionally of one error kind."""
    query = select(Submission).where(Submission.state == SubmissionState.DEAD)
    if error_kind:
        query = query.where(Submission.last_error_kind == error_kind)
    return db.session.scalars(query.order_by(Submission.id.desc()).limit(limit)).all()


def retry_dead(submission_ids: list[int], actor=None) -> list[Submission]:
    """Give dead submissions another full cycle of tries, as new submissions (history kept)."""
    dead = db.session.scalars(
        select(Submission).where(
            Submission.id.in_(submission_ids), Submission.state == SubmissionState.DEAD
        )
    ).all()
    if len(dead) != len(set(submission_ids)):
        missing = sorted(set(submission_ids) - {s.id for s in dead})
        raise ServiceError(f"not dead letters (or unknown): {missing}")
    fresh = []
    for s in dead:
        # Only one live submission per invoice: a newer one may already be on its way.
        busy = db.session.scalar(
            select(Submission.id)
            .where(
                Submission.invoice_id == s.invoice_id,
                Submission.id != s.id,
                Submission.state.in_(
                    (*DUE_STATES, SubmissionState.IN_FLIGHT, SubmissionState.SUCCEEDED)
                ),
            )
            .limit(1)
        )
        if busy is None:
            fresh.append(queue_delivery(s.invoice, reason="retry", actor=actor))
    db.session.commit()
    return fresh


def retry_dead_matching(error_kind: str | None = None, actor=None) -> int:
    """Retry every dead letter (of one error kind, if given); returns how many were retried."""
    ids = [s.id for s in dead_letters(error_kind, limit=100_000)]
    return len(retry_dead(ids, actor=actor)) if ids else 0


@dataclass(frozen=True)
class DeliveryStatus:
    """An invoice's registry status as people may see it (no internal details)."""

    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    registry_id: str | None
    registered_at: datetime | None


_READ = object()


def status_for(invoice: Invoice, latest: Submission | None = _READ) -> DeliveryStatus:
    """The invoice's registry state, attempts, next try, a customer-safe error, registry id.

    ``latest``: its latest submission (or None), when the caller has read it already."""
    if latest is _READ:
        latest = db.session.scalar(
            select(Submission)
            .where(Submission.invoice_id == invoice.id)
            .order_by(Submission.id.desc())
            .limit(1)
        )
    attempts = latest.attempts if latest else 0
    waiting = latest is not None and latest.state in (*DUE_STATES, SubmissionState.IN_FLIGHT)
    return DeliveryStatus(
        state=invoice.registry_state,
        attempts=attempts,
        next_attempt_at=latest.next_attempt_at if waiting else None,
        last_error=latest.last_error_message
        if latest and invoice.registry_state != "registered"
        else None,
        registry_id=invoice.registry_id,
        registered_at=invoice.registered_at,
    )


def backlog_counts() -> dict[str, int]:
    """Submissions by state (for the CLI, health and the dashboard)."""
    from sqlalchemy import func

    rows = db.session.execute(
        select(Submission.state, func.count()).group_by(Submission.state)
    ).all()
    return {state: count for state, count in rows}
