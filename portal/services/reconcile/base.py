"""What every step of a run shares: its settings, the tables it works on, progress reports.

- ``setting(name)``: a ``RECONCILE_*`` setting; ``Progress``: the progress callback's type.
- ``this_run(ref)``: the staged rows of a run; ``clear_staging()``: empty the staging table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import text

from ...extensions import db
from ...models.reconciliation import (
    ReconciliationStaging,
)

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


_S = ReconciliationStaging.__table__


def this_run(ref):
    """The staged rows of this run."""
    return _S.c.run_id == ref.id


def clear_staging() -> None:
    """Empty the staging table. Only the lock holder calls this, so nobody else's rows go."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("TRUNCATE reconciliation_staging"))
    else:
        db.session.execute(_S.delete())
