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
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any

from flask import current_app
from sqlalchemy import and_, case, exists, func, insert, literal, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Alert, Invoice, RegistryState, Submission, SubmissionState, utcnow
from ..models.reconciliation import (
    FindingKind,
    ReconciliationFinding,
    ReconciliationRun,
    ReconciliationStaging,
    RunKind,
    RunState,
)
from ..models.types import UTCDateTime
from . import audit, outbox
from .errors import ServiceError
from .registry_link import client as registry_client

log = logging.getLogger(__name__)

# The fields of the registry protocol (DESIGN.md §6) that must agree.
COMPARED_FIELDS = (
    "code",
    "number",
    "kind",
    "issue_date",
    "amount",
    "tax",
    "total",
    "buyer_tax_id",
    "buyer_name",
    "seller_tax_id",
    "check_code",
)
LIVE_SUBMISSION_STATES = (
    SubmissionState.QUEUED,
    SubmissionState.IN_FLIGHT,
    SubmissionState.RETRY_SCHEDULED,
)
_STAGING_COLUMNS = ("run_id", "key", "registry_id", *COMPARED_FIELDS)
_COPY_STAGING = f"COPY reconciliation_staging ({', '.join(_STAGING_COLUMNS)}) FROM STDIN"
_MONEY_TEXT = r"[0-9]{1,18}(?:\.[0-9]{1,2})?"  # what numeric(20, 2) holds, no sign, no exponent
_MONEY = re.compile(_MONEY_TEXT)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_S = ReconciliationStaging.__table__
_I = Invoice.__table__
_F = ReconciliationFinding.__table__

Progress = Callable[[str, int, int | None], None]
"""``progress(phase, done, total)``: phase ``listing`` counts registry records read (total: an
estimate, or None), then ``comparing`` counts comparison steps done (of ``total``)."""


def setting(name: str) -> Any:
    """A reconciliation setting (``RECONCILE_*``: type and default in ``portal/config.py``).

    ``RECONCILE_PAGE_SIZE``: the registry listing page (the protocol's maximum);
    ``RECONCILE_FULL_EVERY``: seconds between full runs, incremental ones in between;
    ``RECONCILE_LEASE_SECONDS``: a run not heard of for this long may be taken over;
    ``RECONCILE_CLOCK_SKEW_SECONDS``: the registry's clock against ours, for "missing";
    ``RECONCILE_MAX_RESUMES`` and ``RECONCILE_RESUME_WITHIN`` (seconds): an older or more often
    interrupted run is left as failed; ``RECONCILE_CHUNK``: invoices resubmitted or findings
    described per transaction; ``RECONCILE_INTERVAL``: seconds between scheduled runs.
    """
    return current_app.config[name]


class ReconcileBusy(ServiceError):
    """Another run holds the lock: its id and when its lease runs out are in the message."""

    def __init__(self, running: ReconciliationRun | None) -> None:
        if running is None:
            message = "another reconciliation run is starting; try again shortly"
        else:
            until = running.lease_expires_at.isoformat() if running.lease_expires_at else "?"
            message = (
                f"reconciliation run #{running.id} ({running.kind}) is in progress "
                f"(held by {running.owner}, lease until {until}); not starting another"
            )
        super().__init__(message, code="busy")
        self.run_id = running.id if running is not None else None


class LeaseLost(RuntimeError):
    """This process no longer holds its run: another one took it over after the lease ran out."""


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


# --------------------------------------------------------------------------------------------
# The run.


def run(full: bool = False, progress: Progress | None = None, actor=None) -> RunSummary:
    """Run one reconciliation (or resume an interrupted one) and return what it did.

    ``full`` forces a full pass. Raises :class:`ReconcileBusy` when another run holds the lock,
    ``RegistryError`` when the registry cannot list (the run is then ``failed`` and the next
    call resumes it from its stored cursor), :class:`LeaseLost` when it was taken over.
    """
    owner = _owner_token()
    progress = progress or _no_progress
    run_id, resumed = _claim(full, owner, actor)
    try:
        claimed = db.session.get(ReconciliationRun, run_id)
        ref = _RunRef(run_id, claimed.kind, claimed.started_at, owner, actor)
        if resumed:
            _check_staging(ref)
        _read_listing(ref, progress)
        _compare(ref, progress)
    except BaseException as error:
        db.session.rollback()
        if not isinstance(error, LeaseLost):
            _fail(run_id, owner, error, actor)
        raise
    return RunSummary.of(db.session.get(ReconciliationRun, run_id), resumed)


@dataclass(frozen=True)
class _RunRef:
    """What the steps of a run need to know of it (plain values, safe across commits)."""

    id: int
    kind: str
    started_at: datetime
    owner: str
    actor: Any


def _no_progress(_phase: str, _done: int, _total: int | None) -> None:
    return None


def _owner_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _claim(full: bool, owner: str, actor) -> tuple[int, bool]:
    """Take the lock: resume an interrupted run, or start a new one. Commits."""
    now = utcnow()
    lease = now + timedelta(seconds=setting("RECONCILE_LEASE_SECONDS"))
    holder = {"owner": owner, "heartbeat_at": now, "lease_expires_at": lease}
    running = db.session.scalar(
        select(ReconciliationRun).where(ReconciliationRun.state == RunState.RUNNING).limit(1)
    )
    if running is not None:
        return _take_over(running, now, holder, actor), True

    latest = db.session.scalar(
        select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(1)
    )
    if latest is not None and _resumable(latest, full, now):
        try:
            claimed = _update_run(
                latest.id,
                ReconciliationRun.state == RunState.FAILED,
                state=RunState.RUNNING,
                finished_at=None,
                resumes=ReconciliationRun.resumes + 1,
                **holder,
            )
        except IntegrityError:  # another host started a run meanwhile
            claimed = False
        if not claimed:
            raise _busy()
        audit.record(
            "reconcile.run_resumed",
            "reconciliation_run",
            latest.id,
            {"state": RunState.FAILED, "error": latest.error},
            {"state": RunState.RUNNING, "owner": owner},
            actor=actor,
        )
        _commit_claim()
        return latest.id, True

    kind, cursor, offset = _plan(full, now)
    new = ReconciliationRun(
        kind=kind,
        state=RunState.RUNNING,
        started_at=now,
        cursor_start=cursor,
        offset_start=offset,
        cursor_current=cursor,
        offset_current=offset,
        **holder,
    )
    db.session.add(new)
    try:
        db.session.flush()
    except IntegrityError:  # another host inserted its running row first
        db.session.rollback()
        raise _busy() from None
    _clear_staging()
    audit.record(
        "reconcile.run_started",
        "reconciliation_run",
        new.id,
        None,
        {"state": RunState.RUNNING, "kind": kind, "cursor": cursor, "offset": offset},
        actor=actor,
    )
    run_id = new.id
    _commit_claim()
    return run_id, False


def _take_over(running: ReconciliationRun, now: datetime, holder: dict, actor) -> int:
    """Resume a running run whose process died (its lease ran out); refuse if it is alive."""
    if running.lease_expires_at is not None and running.lease_expires_at > now:
        db.session.rollback()
        raise ReconcileBusy(running)
    previous = running.owner
    taken = _update_run(
        running.id,
        ReconciliationRun.state == RunState.RUNNING,
        ReconciliationRun.owner.is_(None)
        if previous is None
        else ReconciliationRun.owner == previous,
        or_(
            ReconciliationRun.lease_expires_at.is_(None), ReconciliationRun.lease_expires_at <= now
        ),
        resumes=ReconciliationRun.resumes + 1,
        **holder,
    )
    if not taken:
        raise _busy()
    audit.record(
        "reconcile.run_taken_over",
        "reconciliation_run",
        running.id,
        {"owner": previous},
        {"owner": holder["owner"]},
        actor=actor,
    )
    _commit_claim()
    return running.id


def _commit_claim() -> None:
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent claim won the one-running index
        db.session.rollback()
        raise _busy() from None


def _busy() -> ReconcileBusy:
    db.session.rollback()
    running = db.session.scalar(
        select(ReconciliationRun).where(ReconciliationRun.state == RunState.RUNNING).limit(1)
    )
    db.session.rollback()
    return ReconcileBusy(running)


def _resumable(latest: ReconciliationRun, full: bool, now: datetime) -> bool:
    if latest.state != RunState.FAILED:
        return False
    if full and latest.kind == RunKind.INCREMENTAL:
        return False  # a full run covers everything an interrupted incremental one would
    if latest.resumes >= setting("RECONCILE_MAX_RESUMES"):
        return False
    return latest.started_at > now - timedelta(seconds=setting("RECONCILE_RESUME_WITHIN"))


def _plan(full: bool, now: datetime) -> tuple[str, str | None, int]:
    """Which kind of run to start, and where its listing begins."""
    succeeded = select(ReconciliationRun).where(ReconciliationRun.state == RunState.SUCCEEDED)
    last = db.session.scalar(succeeded.order_by(ReconciliationRun.id.desc()).limit(1))
    last_full = db.session.scalar(
        succeeded.where(ReconciliationRun.kind == RunKind.FULL)
        .order_by(ReconciliationRun.id.desc())
        .limit(1)
    )
    full_due = (
        full
        or last is None
        or last.offset_end is None
        or last_full is None
        or last_full.started_at <= now - timedelta(seconds=setting("RECONCILE_FULL_EVERY"))
    )
    if full_due:
        return RunKind.FULL, None, 0
    return RunKind.INCREMENTAL, last.cursor_end, last.offset_end


def _update_run(run_id: int, *conditions, connection=None, **values) -> bool:
    """A conditional UPDATE of the run row; True when it matched (the row is then locked).

    On the session's transaction, or on ``connection``'s when given (the listing's own).
    """
    result = (connection or db.session).execute(
        update(ReconciliationRun)
        .where(ReconciliationRun.id == run_id, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _undescribed_findings(ref: _RunRef, *, missing: bool):
    """This run's findings not yet described (``missing`` ones, or the others), in chunks of
    ``RECONCILE_CHUNK``; the run's lease is renewed before each chunk is handed out. Each chunk
    is read after the caller has committed the one before."""
    kind = (
        ReconciliationFinding.kind == FindingKind.MISSING
        if missing
        else ReconciliationFinding.kind != FindingKind.MISSING
    )
    chunk = setting("RECONCILE_CHUNK")
    last_id = 0
    while True:
        findings = db.session.scalars(
            select(ReconciliationFinding)
            .where(
                ReconciliationFinding.run_id == ref.id,
                kind,
                ReconciliationFinding.details.is_(None),
                ReconciliationFinding.id > last_id,
            )
            .order_by(ReconciliationFinding.id)
            .limit(chunk)
        ).all()
        if not findings:
            return
        last_id = findings[-1].id
        _hold(ref)
        yield findings


def _hold(ref: _RunRef, connection=None, **values) -> None:
    """Renew the lease (and write ``values``) if this process still holds the run.

    Done first in every transaction of a run: the row stays locked until the commit, so a
    takeover cannot slip in between the check and the work it guards.
    """
    now = utcnow()
    lease = now + timedelta(seconds=setting("RECONCILE_LEASE_SECONDS"))
    held = _update_run(
        ref.id,
        ReconciliationRun.owner == ref.owner,
        ReconciliationRun.state == RunState.RUNNING,
        connection=connection,
        heartbeat_at=now,
        lease_expires_at=lease,
        **values,
    )
    if not held:
        (connection or db.session).rollback()
        raise LeaseLost(f"reconciliation run #{ref.id} was taken over by another process")


def _fail(run_id: int, owner: str, error: BaseException, actor) -> None:
    """Mark the run failed with its error, keeping its cursor for the resume."""
    message = _error_text(error)
    log.warning("reconciliation run #%s stopped: %s", run_id, message)
    try:
        failed = _update_run(
            run_id,
            ReconciliationRun.owner == owner,
            ReconciliationRun.state == RunState.RUNNING,
            state=RunState.FAILED,
            finished_at=utcnow(),
            owner=None,
            lease_expires_at=None,
            error=message,
        )
        if failed:
            audit.record(
                "reconcile.run_failed",
                "reconciliation_run",
                run_id,
                {"state": RunState.RUNNING},
                {"state": RunState.FAILED, "error": message},
                actor=actor,
            )
        db.session.commit()
    except Exception:  # the database itself is away: the lease will expire instead
        db.session.rollback()
        log.exception("could not record the failure of reconciliation run #%s", run_id)


def _error_text(error: BaseException) -> str:
    from ..registry.client import RegistryError

    if isinstance(error, RegistryError):
        return f"registry: {error.error_kind or 'error'}: {error.message}"[:2000]
    return f"{type(error).__name__}: {error}"[:2000]


# --------------------------------------------------------------------------------------------
# Reading the listing into the staging table.


def _read_listing(ref: _RunRef, progress: Progress) -> None:
    """Stage the registry listing page by page from the run's stored position.

    Each page commits with the new position, on a connection of its own held for the whole
    listing (a thousand commits through the session would each check a connection out of the
    pool and ping it). The next page is fetched by a background thread while this one is
    written, so the registry's time and the database's overlap.
    """
    run = db.session.get(ReconciliationRun, ref.id)
    if run.listed_at is not None:
        return
    registry = registry_client()
    page_size = setting("RECONCILE_PAGE_SIZE")
    cursor, offset, done = run.cursor_current, run.offset_current, run.registry_rows
    expected = _expected_rows(run)
    db.session.commit()
    progress("listing", done, expected)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reconcile-listing")
    with db.engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            # A page and its position commit together or not at all, so a commit lost in a
            # database crash only means reading that page again: no need to wait for the WAL
            # flush of each of a thousand small transactions.
            connection.exec_driver_sql("SET synchronous_commit = off")
            connection.commit()
        try:
            pending = pool.submit(registry.list_invoices, cursor, page_size)
            while True:
                items, next_cursor = pending.result()
                if next_cursor is not None:
                    pending = pool.submit(registry.list_invoices, next_cursor, page_size)
                fresh = items[offset:]
                position: dict[str, Any]
                if next_cursor is None:
                    # No cursor after the last page: remember this page's, and how much of it
                    # was read.
                    position = {
                        "cursor_current": cursor,
                        "offset_current": len(items),
                        "cursor_end": cursor,
                        "offset_end": len(items),
                        "listed_at": utcnow(),
                    }
                else:
                    # Records to skip run on into the next page if this one was shorter.
                    offset = max(0, offset - len(items))
                    position = {"cursor_current": next_cursor, "offset_current": offset}
                _hold(
                    ref,
                    connection,
                    pages=ReconciliationRun.pages + 1,
                    registry_rows=ReconciliationRun.registry_rows + len(fresh),
                    **position,
                )
                _stage(connection, ref.id, fresh)
                connection.commit()
                done += len(fresh)
                progress("listing", done, expected)
                if next_cursor is None:
                    return
                cursor = next_cursor
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            connection.rollback()
            if postgres:
                connection.exec_driver_sql("RESET synchronous_commit")
                connection.commit()


def _check_staging(ref: _RunRef) -> None:
    """Before resuming: are the staged rows still all there? If not, read the listing again.

    The staging table is unlogged on PostgreSQL, so a database crash empties it while the run
    row (logged) still says how far the listing got. Reading it again from the run's start is
    safe: findings are not recorded twice.
    """
    run = db.session.get(ReconciliationRun, ref.id)
    staged = db.session.scalar(select(func.count()).select_from(_S).where(_this_run(ref)))
    if staged == run.registry_rows:
        db.session.commit()
        return
    log.warning(
        "reconciliation run #%s: %s staged rows of %s remain; reading the listing again",
        ref.id,
        staged,
        run.registry_rows,
    )
    _hold(
        ref,
        cursor_current=ReconciliationRun.cursor_start,
        offset_current=ReconciliationRun.offset_start,
        cursor_end=None,
        offset_end=None,
        listed_at=None,
        pages=0,
        registry_rows=0,
    )
    _clear_staging()
    db.session.commit()


def _expected_rows(run: ReconciliationRun) -> int | None:
    # For the progress bar only: a full listing is about as long as the ledger.
    if run.kind != RunKind.FULL:
        return None
    return db.session.scalar(select(func.count()).select_from(_I))


def _money(value: Any) -> Decimal | None:
    if isinstance(value, str) and _MONEY.fullmatch(value):
        return Decimal(value)
    return None


def _day(value: Any) -> date | None:
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    value = value if isinstance(value, str) else str(value)
    # PostgreSQL text cannot hold NUL; a registry that sends one differs from us anyway.
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def staging_row(run_id: int, record: dict) -> tuple:
    """A registry record as a staging row (in ``_STAGING_COLUMNS`` order), typed for SQL.

    Money and dates the registry wrote unreadably become NULL, which compares as different.
    """
    code, number = _text(record.get("code")), _text(record.get("number"))
    key = record.get("key")
    if not isinstance(key, str) or not key:
        key = f"{code}-{number}" if code else number
    registry_id = record.get("registry_id")
    return (
        run_id,
        _text(key),
        _text(registry_id) if registry_id is not None else None,
        code,
        number,
        _text(record.get("kind")),
        _day(record.get("issue_date")),
        _money(record.get("amount")),
        _money(record.get("tax")),
        _money(record.get("total")),
        _text(record.get("buyer_tax_id")),
        _text(record.get("buyer_name")),
        _text(record.get("seller_tax_id")),
        _text(record.get("check_code")),
    )


# COPY's text format: tab-separated, \N for NULL, backslash escapes.
_COPY_UNSAFE = re.compile(r"[\\\t\n\r\x00]")
_FIGURES = re.compile(
    rf"([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})\t{_MONEY_TEXT}\t{_MONEY_TEXT}\t{_MONEY_TEXT}"
)
_RECORD_FIELDS = itemgetter(*_STAGING_COLUMNS[1:])
_VALID_DAYS: dict[str, bool] = {}


def copy_line(run_id: int, record: dict) -> str:
    """A registry record as one line of COPY text (the columns of ``_STAGING_COLUMNS``).

    The common case (every field a string, all printable and without backslashes, money and
    date well formed) costs two joins and a short regular expression, since a million of these
    are made per full run; anything else goes through :func:`staging_row`'s checks and is
    escaped field by field.
    """
    try:
        values = _RECORD_FIELDS(record)
        joined = "".join(values)
    except (KeyError, TypeError):  # a field missing, null or not a string
        return _copy_line_checked(run_id, record)
    # isprintable() is False for tab, newline, CR and NUL (and some rarer characters, which
    # then merely take the slow path).
    if not joined.isprintable() or "\\" in joined or not values[0]:
        return _copy_line_checked(run_id, record)
    figures = _FIGURES.fullmatch("\t".join(values[5:9]))
    if figures is None or not _real_day(figures.group(1)):
        return _copy_line_checked(run_id, record)
    return f"{run_id}\t" + "\t".join(values)


def _real_day(text_: str) -> bool:
    known = _VALID_DAYS.get(text_)
    if known is None:
        known = _day(text_) is not None
        if len(_VALID_DAYS) < 10_000:  # invoices share few issue dates; the cache stays small
            _VALID_DAYS[text_] = known
    return known


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    text_ = str(value)
    if _COPY_UNSAFE.search(text_):
        text_ = (
            text_.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
            .replace("\x00", "\ufffd")
        )
    return text_


def _copy_line_checked(run_id: int, record: dict) -> str:
    return "\t".join(_copy_value(value) for value in staging_row(run_id, record))


def _stage(connection, run_id: int, records: list[dict]) -> None:
    """Bulk-insert registry records into staging, in ``connection``'s transaction.

    PostgreSQL (psycopg): one COPY of the page as text. Elsewhere (SQLite): executemany.
    """
    if not records:
        return
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        page = "\n".join([copy_line(run_id, record) for record in records]) + "\n"
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(_COPY_STAGING) as copy:
            copy.write(page.encode())
        return
    connection.execute(
        insert(_S),
        [dict(zip(_STAGING_COLUMNS, staging_row(run_id, r), strict=True)) for r in records],
    )


def _clear_staging() -> None:
    """Empty the staging table. Only the lock holder calls this, so nobody else's rows go."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("TRUNCATE reconciliation_staging"))
    else:
        db.session.execute(_S.delete())


# --------------------------------------------------------------------------------------------
# Comparing, set-wise.
#
# The heavy statements each read the ledger and the staged listing once, as hash joins:
# the missing anti-join (ledger → staging) and one outer join (staging → ledger) that finds
# unknown keys and differing fields together. Everything else starts from findings, which are
# few, and joins them to the big tables.


def _fields_differ():
    return or_(*(_S.c[name].is_distinct_from(_I.c[name]) for name in COMPARED_FIELDS))


def _this_run(ref: _RunRef):
    return _S.c.run_id == ref.id


def _staged_key(ref: _RunRef, key_column):
    return and_(_S.c.run_id == ref.id, _S.c.key == key_column)


def _not_staged(ref: _RunRef, key_column):
    """The anti-join "this key is not in the staged listing", as each database runs it well.

    PostgreSQL turns NOT EXISTS into a hash anti-join. SQLite would scan the staging table once
    per ledger row (the table has no key index, see ReconciliationStaging); NOT IN over the
    uncorrelated subquery makes it build a temporary index of the staged keys once. (On
    PostgreSQL NOT IN would be the quadratic one.) Staged keys are never NULL, so NOT IN means
    what it says.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        return key_column.not_in(select(_S.c.key).where(_this_run(ref)))
    return ~exists().where(_staged_key(ref, key_column))


def _missing_scope(ref: _RunRef):
    """Ledger invoices a full run may call missing (see the module docstring)."""
    cutoff = ref.started_at - timedelta(seconds=setting("RECONCILE_CLOCK_SKEW_SECONDS"))
    return (_I.c.registry_state == RegistryState.REGISTERED, _I.c.registered_at < cutoff)


def _registry_side_problem():
    # Unknown to the ledger, or known with other fields (an invoice already in conflict is a
    # dead letter staff have; it gets no second task).
    return or_(
        _I.c.id.is_(None),
        and_(_I.c.registry_state != RegistryState.CONFLICT, _fields_differ()),
    )


def _now_literal(now: datetime):
    return literal(now, UTCDateTime())


_STEPS = 5


def _compare(ref: _RunRef, progress: Progress) -> None:
    """Compare the staged listing with the ledger, act on the findings, finish the run."""
    if db.session.get_bind().dialect.name == "postgresql":
        # The table was empty when last analysed; the planner must know it is big now.
        db.session.execute(text("ANALYZE reconciliation_staging"))
        db.session.commit()
    _resolve_settled(ref)
    progress("comparing", 1, _STEPS)
    if ref.kind == RunKind.FULL:
        _find_missing(ref)
        _resubmit_missing(ref)
    progress("comparing", 2, _STEPS)
    _find_registry_side(ref)
    progress("comparing", 3, _STEPS)
    _describe(ref)
    progress("comparing", 4, _STEPS)
    _finish(ref)
    progress("comparing", 5, _STEPS)


def _resolve_settled(ref: _RunRef) -> None:
    """Close the open findings of earlier runs that this run shows are over.

    missing: the listing has the key now (resubmitted and delivered). mismatch: the listing
    has the key with the ledger's fields. unknown: the ledger has the key now (e.g. entered by
    a re-entry case). Each query starts from the open findings (few) and joins them to the big
    tables; the ids found are bounded by the open findings, not by the ledger.
    """
    open_earlier = and_(_F.c.resolved_at.is_(None), _F.c.run_id != ref.id)
    staged = _F.join(_S, _staged_key(ref, _F.c.invoice_key))
    queries = (
        select(_F.c.id, _F.c.invoice_key)
        .select_from(staged)
        .where(open_earlier, _F.c.kind == FindingKind.MISSING),
        select(_F.c.id, _F.c.invoice_key)
        .select_from(staged.join(_I, _I.c.key == _F.c.invoice_key))
        .where(open_earlier, _F.c.kind == FindingKind.MISMATCH, ~_fields_differ()),
        select(_F.c.id, _F.c.invoice_key)
        .select_from(_F.join(_I, _I.c.key == _F.c.invoice_key))
        .where(open_earlier, _F.c.kind == FindingKind.UNKNOWN),
    )
    settled = sorted({tuple(row) for query in queries for row in db.session.execute(query)})
    chunk = setting("RECONCILE_CHUNK")
    for start in range(0, len(settled), chunk):
        rows = settled[start : start + chunk]
        _hold(ref)
        now = utcnow()
        db.session.execute(
            update(_F).where(_F.c.id.in_([i for i, _ in rows])).values(resolved_at=now)
        )
        audit.record_many(
            [
                (
                    "reconcile.finding_resolved",
                    "reconciliation_finding",
                    finding_id,
                    {"resolved_at": None},
                    {"resolved_at": now, "by_run": ref.id, "key": key},
                )
                for finding_id, key in rows
            ],
            actor=ref.actor,
        )
        db.session.commit()


def _find_missing(ref: _RunRef) -> None:
    """Record a finding for every in-scope ledger invoice the full listing lacks (set-wise)."""
    _hold(ref)
    this_run_has_it = exists().where(
        _F.c.run_id == ref.id, _F.c.kind == FindingKind.MISSING, _F.c.invoice_key == _I.c.key
    )
    db.session.execute(
        insert(_F).from_select(
            ["run_id", "kind", "invoice_key", "created_at"],
            select(
                literal(ref.id),
                literal(FindingKind.MISSING.value),
                _I.c.key,
                _now_literal(utcnow()),
            ).where(
                *_missing_scope(ref),
                _not_staged(ref, _I.c.key),
                ~this_run_has_it,  # a resumed run must not record the same invoice twice
            ),
        )
    )
    count = db.session.scalar(
        select(func.count())
        .select_from(_F)
        .where(_F.c.run_id == ref.id, _F.c.kind == FindingKind.MISSING)
    )
    # The ledger side compared: what is in scope now, plus what this run already moved out of
    # it by resubmitting (a resumed run finds those pending).
    in_scope = db.session.scalar(select(func.count()).select_from(_I).where(*_missing_scope(ref)))
    _hold(ref, missing_at_registry=count, ledger_rows=in_scope + ReconciliationRun.resubmitted)
    db.session.commit()


def _resubmit_missing(ref: _RunRef) -> None:
    """Put the missing invoices back in the outbox, a chunk per transaction.

    Each finding is described (``details``) in the transaction that acts on it, so a resumed
    run carries on with the findings still undescribed. An invoice no longer ``registered``
    (changed meanwhile) or with a live delivery is not resubmitted.
    """
    for findings in _undescribed_findings(ref, missing=True):
        keys = [f.invoice_key for f in findings]
        invoices = {
            i.key: i
            for i in db.session.scalars(
                select(Invoice).where(Invoice.key.in_(keys)).with_for_update(of=Invoice)
            )
        }
        live = set(
            db.session.scalars(
                select(Submission.invoice_id).where(
                    Submission.invoice_id.in_([i.id for i in invoices.values()]),
                    Submission.state.in_(LIVE_SUBMISSION_STATES),
                )
            )
        )
        resubmit, changes = [], []
        for finding in findings:
            invoice = invoices.get(finding.invoice_key)
            if invoice is None or invoice.registry_state != RegistryState.REGISTERED:
                finding.details = {"resubmitted": False, "reason": "no longer registered"}
            elif invoice.id in live:
                finding.details = {"resubmitted": False, "reason": "a delivery is already live"}
            else:
                finding.details = {
                    "resubmitted": True,
                    "invoice_id": invoice.id,
                    "registry_id": invoice.registry_id,
                    "registered_at": invoice.registered_at.isoformat(),
                }
                resubmit.append(invoice)
                changes.append(
                    (
                        "invoice.reconcile_resubmitted",
                        "invoice",
                        invoice.id,
                        {
                            "registry_state": invoice.registry_state,
                            "registry_id": invoice.registry_id,
                        },
                        {"registry_state": RegistryState.PENDING, "finding": finding.id},
                    )
                )
        if changes:
            audit.record_many(changes, actor=ref.actor)
            outbox.queue_deliveries(resubmit, reason="reconcile", actor=ref.actor)
        _hold(ref, resubmitted=ReconciliationRun.resubmitted + len(resubmit))
        db.session.commit()  # after_commit hands the deliveries to RQ


def _find_registry_side(ref: _RunRef) -> None:
    """Record mismatches and unknowns among the staged records, in one outer join, and count
    what the listing shows (new findings, and open ones of earlier runs seen again)."""
    _hold(ref)
    kind = case((_I.c.id.is_(None), FindingKind.UNKNOWN.value), else_=FindingKind.MISMATCH.value)
    # One open finding per key: a problem staff already have is not repeated (a key cannot
    # be unknown and mismatched at once; it is in the ledger or it is not).
    reported = exists().where(
        _F.c.invoice_key == _S.c.key,
        _F.c.resolved_at.is_(None),
        _F.c.kind.in_((FindingKind.MISMATCH, FindingKind.UNKNOWN)),
    )
    db.session.execute(
        insert(_F).from_select(
            ["run_id", "kind", "invoice_key", "created_at"],
            select(literal(ref.id), kind, _S.c.key, _now_literal(utcnow()))
            .select_from(_S.outerjoin(_I, _I.c.key == _S.c.key))
            .where(_this_run(ref), _registry_side_problem(), ~reported)
            .distinct(),
        )
    )
    new = dict(
        db.session.execute(
            select(_F.c.kind, func.count())
            .where(_F.c.run_id == ref.id, _F.c.kind != FindingKind.MISSING)
            .group_by(_F.c.kind)
        ).all()
    )
    # Open findings of earlier runs still open after _resolve_settled, whose key this listing
    # holds: the problem is still there.
    again = dict(
        db.session.execute(
            select(_F.c.kind, func.count(func.distinct(_F.c.id)))
            .select_from(_F.join(_S, _staged_key(ref, _F.c.invoice_key)))
            .where(
                _F.c.run_id != ref.id,
                _F.c.resolved_at.is_(None),
                _F.c.kind != FindingKind.MISSING,
            )
            .group_by(_F.c.kind)
        ).all()
    )
    _hold(
        ref,
        mismatched=new.get(FindingKind.MISMATCH, 0) + again.get(FindingKind.MISMATCH, 0),
        unknown_to_ledger=new.get(FindingKind.UNKNOWN, 0) + again.get(FindingKind.UNKNOWN, 0),
    )
    db.session.commit()


def _describe(ref: _RunRef) -> None:
    """Fill in the details of this run's new mismatch and unknown findings, a chunk at a time
    (each chunk reads the staged listing once)."""
    for findings in _undescribed_findings(ref, missing=False):
        keys = [f.invoice_key for f in findings]
        staged = {
            row.key: row
            for row in db.session.execute(select(_S).where(_this_run(ref), _S.c.key.in_(keys)))
        }
        ledger = {
            row.key: row
            for row in db.session.execute(
                select(
                    _I.c.key, _I.c.id, _I.c.registry_state, *(_I.c[n] for n in COMPARED_FIELDS)
                ).where(_I.c.key.in_(keys))
            )
        }
        for finding in findings:
            finding.details = _details(
                finding.kind, staged.get(finding.invoice_key), ledger.get(finding.invoice_key)
            )
        audit.record_many(
            [
                (
                    "reconcile.finding_opened",
                    "reconciliation_finding",
                    f.id,
                    None,
                    {"kind": f.kind, "key": f.invoice_key, "run": ref.id},
                )
                for f in findings
            ],
            actor=ref.actor,
        )
        db.session.commit()


def _wire(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _details(kind: str, staged, ledger) -> dict:
    registry = {name: _wire(getattr(staged, name)) for name in COMPARED_FIELDS} if staged else {}
    details: dict[str, Any] = {"registry_id": staged.registry_id if staged else None}
    if kind == FindingKind.UNKNOWN or ledger is None:
        details["registry"] = registry
        return details
    ours = {name: _wire(getattr(ledger, name)) for name in COMPARED_FIELDS}
    differences = [name for name in COMPARED_FIELDS if ours[name] != registry.get(name)]
    details.update(
        invoice_id=ledger.id,
        registry_state=ledger.registry_state,
        fields=differences,
        ledger={name: ours[name] for name in differences},
        registry={name: registry.get(name) for name in differences},
    )
    return details


def _finish(ref: _RunRef) -> None:
    """Count the ledger side of an incremental run, raise the alert for new unknowns, drop the
    staging, mark the run succeeded."""
    if ref.kind == RunKind.INCREMENTAL:
        ledger_rows = db.session.scalar(
            select(func.count(func.distinct(_I.c.id)))
            .select_from(_S.join(_I, _I.c.key == _S.c.key))
            .where(_this_run(ref))
        )
    else:
        ledger_rows = ReconciliationRun.ledger_rows  # counted before resubmitting
    new_unknown = db.session.scalar(
        select(func.count())
        .select_from(_F)
        .where(_F.c.run_id == ref.id, _F.c.kind == FindingKind.UNKNOWN)
    )
    _hold(ref)
    if new_unknown:
        examples = db.session.scalars(
            select(_F.c.invoice_key)
            .where(_F.c.run_id == ref.id, _F.c.kind == FindingKind.UNKNOWN)
            .order_by(_F.c.id)
            .limit(5)
        ).all()
        db.session.add(
            Alert(
                kind="reconcile_unknown",
                severity="warning",
                subject_type="reconciliation_run",
                subject_id=str(ref.id),
                message=(
                    f"Reconciliation run #{ref.id} found {new_unknown} invoice(s) registered "
                    f"with the registry but unknown to the ledger, e.g. {', '.join(examples)}."
                ),
            )
        )
    _clear_staging()
    _update_run(
        ref.id,
        state=RunState.SUCCEEDED,
        finished_at=utcnow(),
        ledger_rows=ledger_rows,
        owner=None,
        lease_expires_at=None,
        error=None,
    )
    run = db.session.get(ReconciliationRun, ref.id)
    db.session.refresh(run)
    audit.record(
        "reconcile.run_succeeded",
        "reconciliation_run",
        ref.id,
        {"state": RunState.RUNNING},
        {
            "state": RunState.SUCCEEDED,
            "kind": run.kind,
            "registry_rows": run.registry_rows,
            "ledger_rows": run.ledger_rows,
            "missing_at_registry": run.missing_at_registry,
            "resubmitted": run.resubmitted,
            "mismatched": run.mismatched,
            "unknown_to_ledger": run.unknown_to_ledger,
            "new_unknown": new_unknown,
        },
        actor=ref.actor,
    )
    db.session.commit()


# --------------------------------------------------------------------------------------------
# For the CLI, the dashboard and staff.


def recent_runs(limit: int = 20) -> list[ReconciliationRun]:
    """The latest runs, newest first (the dashboard's reconciliation table)."""
    return db.session.scalars(
        select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(limit)
    ).all()


def open_finding_counts() -> dict[str, int]:
    """Open findings by kind (mismatch: staff tasks; unknown: reported; missing: resubmitted)."""
    rows = db.session.execute(
        select(ReconciliationFinding.kind, func.count())
        .where(ReconciliationFinding.resolved_at.is_(None))
        .group_by(ReconciliationFinding.kind)
    ).all()
    return {kind: count for kind, count in rows}


def open_findings(kind: str | None = None, limit: int = 100) -> list[ReconciliationFinding]:
    """Open findings, oldest first (a staff work list), optionally of one kind."""
    query = select(ReconciliationFinding).where(ReconciliationFinding.resolved_at.is_(None))
    if kind:
        query = query.where(ReconciliationFinding.kind == kind)
    return db.session.scalars(query.order_by(ReconciliationFinding.id).limit(limit)).all()


def resolve_finding(finding_id: int, actor=None, note: str = "") -> ReconciliationFinding:
    """Staff close a finding (a mismatch dealt with, an unknown invoice explained); audited."""
    finding = db.session.get(ReconciliationFinding, finding_id)
    if finding is None:
        raise ServiceError(f"no reconciliation finding {finding_id}")
    if finding.resolved_at is not None:
        raise ServiceError(f"reconciliation finding {finding_id} is already resolved")
    close_finding(finding, actor=actor, note=note)
    db.session.commit()
    return finding


def close_finding(finding: ReconciliationFinding, actor=None, note: str = "") -> None:
    """Mark an open finding resolved, with its audit row; the caller commits."""
    finding.resolved_at = utcnow()
    audit.record(
        "reconcile.finding_resolved",
        "reconciliation_finding",
        finding.id,
        {"resolved_at": None},
        {"resolved_at": finding.resolved_at, "note": note[:500]},
        actor=actor,
    )
