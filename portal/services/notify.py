"""Notifications: a row in the caller's transaction, delivered by a job after the commit.

``queue`` decides whether a mail goes out at all (non-essential kinds respect the recipient's
preference) and records it; ``deliver`` renders and sends one row, retrying transient failures
with backoff; ``sweep`` re-enqueues rows whose job went missing. The ``case_*``, ``staff_*``
and operational helpers below are the triggers the other services call.
"""

from __future__ import annotations

import logging
import random
import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..domain.backoff import BackoffPolicy, retry_delay, should_give_up
from ..extensions import db
from ..mail import (
    NON_ESSENTIAL_KINDS,
    MailDeliveryError,
    compose_notification,
    mail_backend,
    make_message_id,
    make_rating_token,
    new_nonce,
)
from ..models import Case, Notification, Role, User, utcnow
from ..queue import enqueue_after_commit

log = logging.getLogger(__name__)
SEND_JOB = "workers.notify.send"
_POLICY = BackoffPolicy(base_seconds=60, cap_seconds=3600, max_attempts=8)
_TIME_KEYS = {"first_response_due", "resolution_due", "due", "since", "rating_expires"}


def external_url(endpoint: str, **values) -> str:
    """An absolute link to a portal page, for mail (built from ``PUBLIC_URL``, no request)."""
    base = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, url_scheme=base.scheme or "http", script_name=base.path or "/"
    )
    return adapter.build(endpoint, values, force_external=True)


# The single-use links mail carries: whoever holds one can rate a case, confirm an address, set
# a password or accept an invitation. Staff reading the mail folder see them masked.
_ONE_TIME_LINK = re.compile(r"(/(?:rate|auth/verify|auth/reset|buyers/invitations)/)[^\s?#\"'<>]+")
MASK = "••••••"


def masked_for_staff(text: str | None) -> str | None:
    """Mail as staff may read it: the token of every single-use link replaced by a mask."""
    return _ONE_TIME_LINK.sub(lambda m: m.group(1) + MASK, text) if text else text


def _jsonable(context: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in context.items()}


def _revived(context: dict) -> dict:
    return {
        k: (datetime.fromisoformat(v) if k in _TIME_KEYS and isinstance(v, str) else v)
        for k, v in context.items()
    }


def queue(
    kind: str,
    to: str | None,
    *,
    context: dict,
    user: User | None = None,
    case: Case | None = None,
    locale: str | None = None,
) -> Notification | None:
    """Record a mail to send after the caller's commit; None when there is nobody to send it to
    or the recipient turned this kind of mail off."""
    if not to:
        return None
    if user is not None and kind in NON_ESSENTIAL_KINDS and not user.optional_mail:
        return None
    row = Notification(
        kind=kind,
        recipient=to,
        user_id=getattr(user, "id", None),
        case_id=getattr(case, "id", None),
        locale=locale or getattr(user, "locale", None) or "zh_CN",
        context=_jsonable(context),
        next_attempt_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    _plan(db.session, row)
    return row


def _plan(session: Session, row: Notification) -> None:
    row.job_id = f"notify-{row.id}-{row.attempts}"
    row.enqueued_at = utcnow()
    enqueue_after_commit(session, SEND_JOB, row.id, job_id=row.job_id)


def deliver(notification_id: int) -> str:
    """Render and send one notification; returns its state. Sending twice is prevented by the
    claim; a retry after a timeout reuses the Message-ID, so a duplicate is recognisable."""
    now = utcnow()
    claimed = db.session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.state == "pending",
            Notification.next_attempt_at <= now,
        )
        .values(attempts=Notification.attempts + 1, next_attempt_at=now + timedelta(minutes=5))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    row = db.session.get(Notification, notification_id)
    if not claimed or row is None:
        return row.state if row else "missing"
    domain = urlsplit(current_app.config["PUBLIC_URL"]).hostname or "localhost"
    message = compose_notification(
        row.kind,
        row.locale,
        _revived(row.context),
        to=row.recipient,
        message_id=make_message_id(row.id, domain),
    )
    try:
        mail_backend(current_app).send(message)
    except MailDeliveryError as error:
        row.last_error = error.reason[:500]
        if error.transient and not should_give_up(row.attempts, _POLICY):
            row.next_attempt_at = utcnow() + timedelta(
                seconds=retry_delay(row.attempts, _POLICY, random.random())
            )
        else:
            row.state = "failed"
            log.warning(
                "notification %s to %s failed for good: %s", row.id, row.recipient, error.reason
            )
        db.session.commit()
        return row.state
    row.state, row.sent_at, row.last_error = "sent", utcnow(), None
    db.session.commit()
    return row.state


def sweep() -> int:
    """Re-enqueue pending notifications that are due and whose job is gone or stale."""
    now = utcnow()
    rows = db.session.scalars(
        select(Notification)
        .where(
            Notification.state == "pending",
            Notification.next_attempt_at <= now,
            or_(
                Notification.enqueued_at.is_(None),
                Notification.enqueued_at < now - timedelta(minutes=2),
            ),
        )
        .limit(500)
    ).all()
    for row in rows:
        _plan(db.session, row)
    db.session.commit()
    return len(rows)


# ------------------------------------------------------------------------------ triggers


def _to_customer(kind: str, case: Case, **context) -> None:
    """Queue ``kind`` for the case's customer (its contact e-mail, else the account's), with
    the reference and the link to the case page in the context."""
    user = case.customer
    to = case.contact_email or (user.email if user else None)
    queue(
        kind,
        to,
        user=user,
        case=case,
        context={"reference": case.reference, "case_url": _case_url(case), **context},
    )


def _case_url(case: Case) -> str:
    return external_url("customer.case_detail", reference=case.reference)


def case_opened(case: Case) -> None:
    """Acknowledge a new report with its reference and the SLA promise."""
    _to_customer(
        "case_opened",
        case,
        first_response_due=case.first_response_due_at,
        resolution_due=case.resolution_due_at,
    )


def info_requested(case: Case, request_text: str) -> None:
    """Tell the customer what the reviewer needs."""
    _to_customer("info_requested", case, request=request_text)


def case_approved(case: Case, invoice_key: str) -> None:
    """The re-entry was approved; registration follows."""
    _to_customer("case_approved", case, invoice_key=invoice_key)


def case_rejected(case: Case, reason: str) -> None:
    """The report was rejected, with the reason."""
    _to_customer("case_rejected", case, reason=reason)


def case_resolved(case: Case, registry_id: str) -> None:
    """The answer to the report, with one-click rating links (signed, single use, expiring)."""
    case.rating_nonce = new_nonce()
    token = make_rating_token(
        case.id, case.rating_nonce, current_app.config["SECRET_KEY"], utcnow()
    )
    links = [
        (score, external_url("customer.rate", token=token, score=score)) for score in range(1, 6)
    ]
    _to_customer("case_resolved", case, registry_id=registry_id, rating_links=links)


def staff_assigned(case: Case, reviewer: User) -> None:
    queue(
        "staff_assigned",
        reviewer.email,
        user=reviewer,
        case=case,
        context={
            "reference": case.reference,
            "review_url": external_url("staff.case_review", reference=case.reference),
            "due": case.resolution_due_at,
        },
    )


def supervisors() -> list[User]:
    """Active supervisors and admins: who hears of breaches and outages."""
    return db.session.scalars(
        select(User).where(User.active.is_(True), User.role.in_([Role.SUPERVISOR, Role.ADMIN]))
    ).all()


def dead_letter(invoice_key: str, error: str, attempts: int) -> None:
    url = external_url("staff.dead_letters")
    for boss in supervisors():
        queue(
            "dead_letter",
            boss.email,
            user=boss,
            context={
                "invoice_key": invoice_key,
                "error": error,
                "dead_letters_url": url,
                "attempts": attempts,
            },
        )


def registry_down(since: datetime, backlog: int | None = None) -> None:
    url = external_url("staff.dead_letters")
    for boss in supervisors():
        context = {"since": since, "dashboard_url": url}
        if backlog is not None:
            context["backlog"] = backlog
        queue("registry_down", boss.email, user=boss, context=context)
