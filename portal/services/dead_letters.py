"""Invoices whose automatic registration gave up, as staff work them ("dead letters").

A dead submission stays in the database as history; what staff need is the *invoices* still
waiting for them. A dead letter is open while its invoice is not registered and no newer
submission of it has succeeded: once a retry (a new submission) is accepted by the registry,
the dead letter leaves the list, the dashboard's count and the alert (``monitoring``).
While the retry is on its way the row stays, marked as being retried.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Invoice, RegistryState, Submission, SubmissionState

LIVE = (SubmissionState.QUEUED, SubmissionState.RETRY_SCHEDULED, SubmissionState.IN_FLIGHT)


@dataclass(frozen=True)
class DeadLetter:
    """One open dead letter: the dead submission, and whether a retry is on its way."""

    submission: Submission
    retrying: bool


def _newer(state_in):
    newer = aliased(Submission)
    return exists().where(
        and_(
            newer.invoice_id == Submission.invoice_id,
            newer.id > Submission.id,
            newer.state.in_(state_in),
        )
    )


def _open():
    """Dead submissions that are the invoice's latest word: not registered since, and not
    superseded by a newer dead one (one row per invoice)."""
    return (
        select(Submission)
        .join(Invoice, Invoice.id == Submission.invoice_id)
        .where(
            Submission.state == SubmissionState.DEAD,
            Invoice.registry_state != RegistryState.REGISTERED,
            ~_newer((SubmissionState.SUCCEEDED, SubmissionState.DEAD)),
        )
    )


def open_letters(error_kind: str | None = None, limit: int = 200) -> list[DeadLetter]:
    """Open dead letters, newest first, optionally of one error kind."""
    query = _open()
    if error_kind:
        query = query.where(Submission.last_error_kind == error_kind)
    query = query.add_columns(_newer(LIVE).label("retrying"))
    rows = db.session.execute(query.order_by(Submission.id.desc()).limit(limit)).all()
    return [DeadLetter(submission, bool(retrying)) for submission, retrying in rows]


def open_count(waiting_only: bool = False) -> int:
    """How many dead letters are open (``waiting_only``: not being retried already)."""
    query = _open()
    if waiting_only:
        query = query.where(~_newer(LIVE))
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def error_kinds() -> list[str]:
    """The error kinds among open dead letters (the filter's choices)."""
    subquery = _open().subquery()
    return sorted(
        k
        for k in db.session.scalars(select(subquery.c.last_error_kind).distinct())
        if k is not None
    )
