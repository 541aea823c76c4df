"""Lookup: what a customer typed, compared with the ledger and the registry, explained.

The answer is never a bare "not found": ``lookup`` returns the domain's ordered findings. The
timeline of a ledger invoice is shown only after a full match, so a lookup never reveals more
than the customer proved they already hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, insert, select

from ..domain import (
    Finding,
    FindingCode,
    LedgerRecord,
    LookupQuery,
    build_lookup_query,
    check_issue_date_range,
    shanghai_date,
)
from ..domain import RegistryState as DomainRegistryState
from ..domain import diagnose as domain_diagnose
from ..domain.shanghai_time import to_shanghai
from ..extensions import db
from ..models import Invoice, LookupEvent, Submission, SubmissionAttempt, utcnow
from ..queue import try_redis
from . import outbox
from .errors import ServiceError
from .outbox import DeliveryStatus
from .registry_link import CircuitBreaker

MATCH_CODES = {FindingCode.REGISTERED, FindingCode.PENDING_REGISTRY}

# Our delivery error kinds → the customer-safe reasons the diagnosis knows.
_CUSTOMER_ERRORS = {
    "timeout": "timeout",
    "connection": "unavailable",
    "bad_response": "unavailable",
    "rate_limited": "rate_limited",
    "invalid": "rejected",
    "rejected": "rejected",
    "conflict": "conflict",
}


def customer_error(error_kind: str | None) -> str | None:
    """The customer-safe reason (a key the diagnosis knows) for a delivery error kind."""
    if not error_kind:
        return None
    if error_kind.startswith("http_5"):
        return "unavailable"
    return _CUSTOMER_ERRORS.get(error_kind, "unavailable")


@dataclass(frozen=True)
class TimelineEntry:
    """One step in an invoice's way to the registry, for the result page."""

    at: datetime | date
    kind: str  # issued | queued | attempt | registered
    outcome: str | None = None


@dataclass
class LookupResult:
    """What a lookup found: ``findings`` always; the ``invoice`` and ``timeline`` only on a
    full match."""

    query: LookupQuery
    findings: tuple[Finding, ...]
    registry_health: str
    checks_left_today: int
    invoice: Invoice | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    # On a full match, the invoice's delivery status (outbox.status_for), read before the
    # commit expires the invoice: the API answers with it without reading the rows again.
    delivery: DeliveryStatus | None = None

    @property
    def matched(self) -> bool:
        return any(f.code in MATCH_CODES for f in self.findings)

    @property
    def codes(self) -> list[str]:
        return [str(f.code) for f in self.findings]


class LookupLimited(ServiceError):
    """This invoice was looked up too often today."""


def parse(values: Mapping[str, object]) -> LookupQuery:
    """The lookup the customer typed; raises the domain's InvoiceRuleError with the field."""
    return build_lookup_query(values)


def _requesters(user, source: str | None) -> tuple[str, list[str]]:
    """Who is looking (the counter that may refuse them) and every counter their failures go
    to: a signed-in user is judged by their account, anyone else by their address; a failure
    counts against both."""
    address = f"ip:{source or 'unknown'}"
    if user is not None and getattr(user, "id", None) is not None:
        account = f"user:{user.id}"
        return account, [account, address]
    return address, [address]


def _failure_counter(today: date, key: str, who: str) -> str:
    return f"portal:lookup-failures:{today.isoformat()}:{key}:{who}"


def _limited(limit: int) -> LookupLimited:
    return LookupLimited(
        _l(
            "You have checked this invoice %(n)d times today with fields that did not match. "
            "Please compare the fields with the invoice and try again tomorrow.",
            n=limit,
        ),
        code="too_many_checks",
    )


def _failures_and_health(today: date, key: str, who: str) -> tuple[int, str]:
    """The requester's failures so far and the registry breaker's state, in one round trip.

    Redis slow or away (or failed moments ago): no failures (the route's rate limits still stand
    in-process; the count is skipped and logged, customers are not refused) and the registry's
    health "unknown" (reading the breaker is itself the check: no separate PING).
    """

    def read(redis):
        pipe = redis.pipeline(transaction=False)
        pipe.get(_failure_counter(today, key, who))
        pipe.mget(*CircuitBreaker.STATUS_KEYS)
        return pipe.execute()

    values = try_redis("lookup daily count and registry breaker", read, None)
    if values is None:
        return 0, "unknown"
    failures, breaker_values = values
    return int(failures or 0), CircuitBreaker.status_from(breaker_values).state


def _count_failure(today: date, key: str, counters: list[str]) -> int:
    """Count one failed match against each counter; returns the first one's new value (0 when
    Redis is slow or away: not counted, logged)."""

    def count(redis) -> int:
        pipe = redis.pipeline()
        for who in counters:
            counter = _failure_counter(today, key, who)
            pipe.incr(counter)
            pipe.expire(counter, 2 * 86400)
        return int(pipe.execute()[0])

    return try_redis("lookup daily count", count, 0)


@dataclass
class _History:
    """An invoice's submissions (oldest first) with each one's attempts, read in one query."""

    submissions: list[Submission] = field(default_factory=list)
    attempts: dict[int, list[SubmissionAttempt]] = field(default_factory=dict)


def _history(invoice: Invoice) -> _History:
    rows = db.session.execute(
        select(Submission, SubmissionAttempt)
        .outerjoin(SubmissionAttempt, SubmissionAttempt.submission_id == Submission.id)
        .where(Submission.invoice_id == invoice.id)
        .order_by(Submission.id, SubmissionAttempt.id)
    )
    return _collect((submission, attempt) for submission, attempt in rows)


# Built once: a lookup runs the same two statements with other values each time.
_INVOICE_WITH_HISTORY = (
    select(Invoice, Submission, SubmissionAttempt)
    .outerjoin(Submission, Submission.invoice_id == Invoice.id)
    .outerjoin(SubmissionAttempt, SubmissionAttempt.submission_id == Submission.id)
    .where(Invoice.key == bindparam("key"))
    .order_by(Submission.id, SubmissionAttempt.id)
)
# A plain INSERT on the table: the row is only written, never read back in the request, so it
# needs no place in the session's unit of work, nor the ORM's bulk-insert machinery (the
# columns' defaults, such as the time, are the table's and still apply).
_RECORD_LOOKUP = insert(LookupEvent.__table__)


def _invoice_and_history(key: str) -> tuple[Invoice | None, _History]:
    """The invoice of ``key`` with its submissions and their attempts, in one statement (one
    round trip: a lookup's history is a handful of rows)."""
    rows = db.session.execute(_INVOICE_WITH_HISTORY, {"key": key}).all()
    if not rows:
        return None, _History()
    return rows[0][0], _collect((s, a) for _i, s, a in rows if s is not None)


def _collect(rows) -> _History:
    history = _History()
    for submission, attempt in rows:
        if submission.id not in history.attempts:
            history.submissions.append(submission)
            history.attempts[submission.id] = []
        if attempt is not None:
            history.attempts[submission.id].append(attempt)
    return history


def _registry_state(invoice: Invoice, submissions: list[Submission]) -> DomainRegistryState:
    latest = submissions[-1] if submissions else None
    if invoice.registry_id:
        return DomainRegistryState(
            registry_id=invoice.registry_id,
            registered_at=invoice.registered_at,
            attempts=latest.attempts if latest else 0,
        )
    if latest is None:
        return DomainRegistryState()
    waiting = latest.state in ("queued", "retry_scheduled", "in_flight")
    return DomainRegistryState(
        attempts=latest.attempts,
        next_attempt_at=latest.next_attempt_at if waiting else None,
        last_error=customer_error(latest.last_error_kind),
        exhausted=latest.state == "dead",
    )


def timeline(invoice: Invoice, history: _History | None = None) -> list[TimelineEntry]:
    """The invoice's way to the registry: issued, queued, each attempt, registered."""
    if history is None:
        history = _history(invoice)
    entries = [TimelineEntry(invoice.issue_date, "issued")]
    for s in history.submissions:
        entries.append(TimelineEntry(s.created_at, "queued"))
        entries.extend(
            TimelineEntry(a.started_at, "attempt", a.outcome) for a in history.attempts[s.id]
        )
    if invoice.registered_at:
        entries.append(TimelineEntry(invoice.registered_at, "registered"))
    return entries


def lookup(
    query: LookupQuery, *, user=None, channel: str = "web", source: str | None = None
) -> LookupResult:
    """Diagnose ``query`` against the ledger and the registry state.

    The daily limit of an invoice (``LOOKUPS_PER_INVOICE_PER_DAY``) counts the checks that did
    not match, per requester (``user``'s account, else the ``source`` address): past it, that
    requester gets only LookupLimited for the rest of the day, whatever they type, so the
    limit gives nothing away. A full match by anyone under their own limit is always answered;
    someone else's failures never refuse the holder.
    """
    today = shanghai_date(utcnow())
    key = query.identity.key
    if query.issue_date is not None:
        check_issue_date_range(query.issue_date, today)
    limit = current_app.config["LOOKUPS_PER_INVOICE_PER_DAY"]
    judged_by, counters = _requesters(user, source)
    failures, health = _failures_and_health(today, key, judged_by)
    if failures >= limit:
        raise _limited(limit)
    invoice, history = _invoice_and_history(key)
    ledger = registry = None
    if invoice is not None:
        ledger = LedgerRecord(
            key=invoice.key,
            issue_date=invoice.issue_date,
            amount=invoice.amount,
            total=invoice.total,
            check_code=invoice.check_code or None,
        )
        registry = _registry_state(invoice, history.submissions)
    findings = domain_diagnose(
        query,
        today=today,
        ledger=ledger,
        registry=registry,
        registry_available=health == "closed",
    )
    if invoice is not None and findings[0].code == FindingCode.REGISTRATION_FAILED:
        findings = (_with_staff_task(invoice, findings[0]), *findings[1:])
    result = LookupResult(query, findings, health, limit - failures)
    if result.matched:
        result.invoice = invoice
        result.timeline = timeline(invoice, history)
        latest = history.submissions[-1] if history.submissions else None
        result.delivery = outbox.status_for(invoice, latest)
    else:
        failures = _count_failure(today, key, counters) or failures + 1
        result.checks_left_today = max(0, limit - failures)
    db.session.execute(
        _RECORD_LOOKUP,
        {
            "invoice_key": key,
            "finding": str(findings[0].code),
            "channel": channel,
            "user_id": getattr(user, "id", None),
        },
    )
    db.session.commit()
    return result


def _with_staff_task(invoice: Invoice, finding: Finding) -> Finding:
    """A failed registration is said honestly, with the staff task that holds it (opened now
    if there is none) and when the customer hears from us."""
    from . import cases

    task = cases.ensure_registry_task(invoice)
    reply_by = to_shanghai(task.first_response_due_at).isoformat(timespec="seconds")
    return Finding(
        finding.code, {**finding.params, "reference": task.reference, "reply_by": reply_by}
    )
