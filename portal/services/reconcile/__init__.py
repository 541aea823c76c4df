"""Reconciliation: compare the ledger with the registry's own listing and fix the gaps.

A run pages through the registry listing (``GET /v1/invoices?since=CURSOR``) and copies each
page into ``reconciliation_staging`` (COPY on PostgreSQL, executemany on SQLite), committing
the page together with the listing position. When the listing is read, the ledger and the
staged listing are compared set-wise in the database:

- missing: registered in the ledger, absent from the registry (an anti-join ledger → staging).
  Resubmitted through the outbox (``reason="reconcile"``, the invoice back to ``pending``,
  audited), unless a delivery of it is already live.
- mismatch: at the registry with different fields (the protocol's fields compared column by
  column, money as decimals, dates as dates). A finding: the staff task.
- unknown: at the registry, unknown to the ledger. A finding, and one alert per run: the report.
  Mismatches and unknowns come out of one outer join staging → ledger.

Python holds one page of the listing (and the next one, fetched by a background thread while
this one is written), or one chunk of findings, at a time: memory does not grow with the ledger
or the registry. The database does the comparing: two hash joins over the two tables.

Full and incremental runs. The listing is in registration order, and its cursor only moves
forward. A full run reads it from the start, so it sees everything the registry holds: it is
the only kind that can say an invoice is *missing*. An incremental run reads only what was
registered after the previous successful run's end, and finds mismatches and unknowns among
those records (and closes findings those records settle); it concludes nothing about missing
invoices, since the registry's older records were not read. A run is full when asked
(``flask reconcile run --full``), when there is no previous end to continue from, or when the
last successful full run started more than ``RECONCILE_FULL_EVERY`` seconds ago.

The end of the listing. The registry gives ``next_cursor: null`` on its last page, so there is
no cursor "after the end". A run therefore remembers the cursor *of* its last page and how many
records it read from it (``cursor_end``, ``offset_end``); the next incremental run asks for that
page again and skips those records. This needs only what the protocol promises: a cursor may be
used again, and records keep their order.

Missing, carefully. A full run only calls an invoice missing when the ledger recorded its
registration before the run began reading the listing (less ``RECONCILE_CLOCK_SKEW_SECONDS``,
as the ledger keeps the registry's own timestamp): anything registered later may sit beyond the
point the listing had reached. Such an invoice is looked at again by the next full run.

The lock. At most one run is ``running``: a partial unique index refuses a second running row,
whatever host tries. A run holds a lease, renewed with every commit; every commit first checks,
with a conditional UPDATE, that the run is still this process's (a run taken over by someone
else stops at once, rolling back its last page). A second invocation while the lease is valid
is refused (:class:`ReconcileBusy`).

Crash and resume. Progress is committed page by page and step by step. A run that raised (a
registry outage, a database error, Ctrl-C) is marked ``failed`` with its error; a run whose
process died keeps ``running`` until its lease expires. Either way the next invocation resumes
that same run from its stored cursor (up to ``RECONCILE_MAX_RESUMES`` times, within
``RECONCILE_RESUME_WITHIN`` seconds of its start; a run asked with ``--full`` does not resume an
interrupted incremental one, it supersedes it). Every comparison step can be repeated: findings
are not duplicated and an invoice resubmitted once is no longer ``registered``.

The package, along those seams: ``lease`` (the lock, the lease, claiming and resuming),
``staging`` (the listing into the staging table, COPY), ``comparison`` (the set-wise
comparison and what is done about it), ``records`` (runs and findings for the CLI, the
dashboard and staff); ``base`` holds the settings and tables they share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ...extensions import db
from ...models.reconciliation import ReconciliationRun
from . import comparison, lease, staging
from .base import Progress, setting
from .lease import LeaseLost, ReconcileBusy, RunRef, owner_token
from .records import (
    close_finding,
    open_finding_counts,
    open_findings,
    recent_runs,
    resolve_finding,
)
from .staging import copy_line, staging_row

__all__ = [
    "LeaseLost",
    "Progress",
    "ReconcileBusy",
    "RunSummary",
    "close_finding",
    "copy_line",
    "open_finding_counts",
    "open_findings",
    "recent_runs",
    "resolve_finding",
    "run",
    "setting",
    "staging_row",
]


@dataclass(frozen=True)
class RunSummary:
    """What a run did, as plain values (for the CLI, the job result and the dashboard)."""

    id: int
    kind: str
    state: str
    resumed: bool
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    pages: int
    registry_rows: int
    ledger_rows: int
    missing_at_registry: int
    resubmitted: int
    mismatched: int
    unknown_to_ledger: int
    cursor_start: str | None
    cursor_end: str | None
    offset_end: int | None
    resumes: int
    error: str | None

    @classmethod
    def of(cls, run: ReconciliationRun, resumed: bool = False) -> RunSummary:
        """The summary of a run row."""
        return cls(
            id=run.id,
            kind=run.kind,
            state=run.state,
            resumed=resumed,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_seconds=run.duration_seconds,
            pages=run.pages,
            registry_rows=run.registry_rows,
            ledger_rows=run.ledger_rows,
            missing_at_registry=run.missing_at_registry,
            resubmitted=run.resubmitted,
            mismatched=run.mismatched,
            unknown_to_ledger=run.unknown_to_ledger,
            cursor_start=run.cursor_start,
            cursor_end=run.cursor_end,
            offset_end=run.offset_end,
            resumes=run.resumes,
            error=run.error,
        )


def run(full: bool = False, progress: Progress | None = None, actor=None) -> RunSummary:
    """Run one reconciliation (or resume an interrupted one) and return what it did.

    ``full`` forces a full pass. Raises :class:`ReconcileBusy` when another run holds the lock,
    ``RegistryError`` when the registry cannot list (the run is then ``failed`` and the next
    call resumes it from its stored cursor), :class:`LeaseLost` when it was taken over.
    """
    owner = owner_token()
    progress = progress or _no_progress
    run_id, resumed = lease.claim(full, owner, actor)
    try:
        claimed = db.session.get(ReconciliationRun, run_id)
        ref = RunRef(run_id, claimed.kind, claimed.started_at, owner, actor)
        if resumed:
            staging.check_staging(ref)
        staging.read_listing(ref, progress)
        comparison.compare(ref, progress)
    except BaseException as error:
        db.session.rollback()
        if not isinstance(error, LeaseLost):
            lease.fail(run_id, owner, error, actor)
        raise
    return RunSummary.of(db.session.get(ReconciliationRun, run_id), resumed)


def _no_progress(_phase: str, _done: int, _total: int | None) -> None:
    return None
