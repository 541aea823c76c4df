"""The run's lock and lease: claim or resume a run, hold it while working, record a failure.

At most one run is ``running`` (a partial unique index); every transaction of a run first
renews its lease with a conditional UPDATE (``hold``), so a run taken over by another process
stops at once (``LeaseLost``).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import utcnow
from ...models.reconciliation import (
    ReconciliationRun,
    RunKind,
    RunState,
)
from .. import audit
from ..errors import ServiceError
from .base import clear_staging, setting

log = logging.getLogger(__name__)


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
class RunRef:
    """What the steps of a run need to know of it (plain values, safe across commits)."""

    id: int
    kind: str
    started_at: datetime
    owner: str
    actor: Any


def owner_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def claim(full: bool, owner: str, actor) -> tuple[int, bool]:
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
            claimed = update_run(
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
    clear_staging()
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
    taken = update_run(
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


def update_run(run_id: int, *conditions, connection=None, **values) -> bool:
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


def hold(ref: RunRef, connection=None, **values) -> None:
    """Renew the lease (and write ``values``) if this process still holds the run.

    Done first in every transaction of a run: the row stays locked until the commit, so a
    takeover cannot slip in between the check and the work it guards.
    """
    now = utcnow()
    lease = now + timedelta(seconds=setting("RECONCILE_LEASE_SECONDS"))
    held = update_run(
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


def fail(run_id: int, owner: str, error: BaseException, actor) -> None:
    """Mark the run failed with its error, keeping its cursor for the resume."""
    message = _error_text(error)
    log.warning("reconciliation run #%s stopped: %s", run_id, message)
    try:
        failed = update_run(
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
    from ...registry.client import RegistryError

    if isinstance(error, RegistryError):
        return f"registry: {error.error_kind or 'error'}: {error.message}"[:2000]
    return f"{type(error).__name__}: {error}"[:2000]
