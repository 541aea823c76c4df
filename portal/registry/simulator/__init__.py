"""A stand-in for Beijing's invoice registry, used in development, tests and benchmarks.

It serves the registry protocol of DESIGN.md §6 (JSON over HTTP) and lets a test or an
operator inject the failures the real registry has: errors, timeouts, latency, outages, rate
limits and rejections. It is deliberately independent of the portal: its own Flask app, its own
storage (stdlib ``sqlite3``, a file or memory) and its own validation, so it can disagree with
the portal the way the real registry sometimes does.

Protocol (every body is JSON):

``PUT /v1/invoices/{key}``
    201 created · 200 the same fields were already registered (a duplicate) · 409 different
    fields are registered under that key (body: ``record``, ``differences``) · 422 invalid
    (body: ``{"errors": {field: reason}}``) · 400 the body is not a JSON object.
``GET /v1/invoices/{key}``
    200 the record (invoice fields plus ``key``, ``registry_id``, ``registered_at``) · 404.
``GET /v1/invoices?since=CURSOR&limit=N``
    ``{"invoices": [...], "next_cursor": "..." | null}`` in registration order; ``limit``
    defaults to 100 and is capped at 1000; ``next_cursor`` is null on the last page. Cursors
    are opaque strings; records registered after a cursor was issued appear on later pages.
``POST /v1/invoices:batch``
    ``{"invoices": [...]}`` with at most 100 items → 200 ``{"results": [...]}``, one result per
    item in order, each the single-PUT body plus ``key`` and ``status`` (201/200/409/422).
    More than 100 items → 422.

Validation (``validate_invoice``): every field present (``code``, ``check_code`` and
``buyer_tax_id`` may be empty), strings only; key shape (10/12-digit code with an 8-digit number,
or no code and a 20-digit number); ``issue_date`` a real YYYY-MM-DD date not after today in
Beijing; money as non-negative decimal strings with at most two decimals and ``amount + tax ==
total`` exactly; tax IDs 15-20 capital letters and digits (shape only, no checksum); ``kind`` is
any short non-empty string. Unknown fields are ignored and not stored.

Injected faults apply to every ``/v1/`` request before it touches storage, in this order:
``latency_ms`` (sleep) → ``outage`` (503) → ``rate_limit`` (429 + Retry-After) →
``error_rate`` (500 or 503) → ``timeout_rate`` (sleep ``timeout_seconds``, then 504).
``reject_rate`` refuses a valid invoice with 422 (per item in a batch). The separate
``timeout_after_store_rate`` stores the invoice and *then* hangs and answers 504: the case that
makes idempotent PUTs necessary. ``GET /healthz`` answers 503 during an outage (so the portal's
registry-health view sees it) and ignores every other fault.

Operator endpoints, never affected by faults: ``GET/PUT /_sim/faults``, ``GET /_sim/stats``
(requests by outcome, batch items by outcome, records, duplicates, conflicts, and the number of
distinct client connections, which shows whether clients reuse theirs), ``POST /_sim/reset``.

``serve_simulator`` (for ``flask registry simulate``) and ``SimulatorServer`` (a background
thread, for tests and benchmarks) serve it with a thread per connection and HTTP/1.1
keep-alive, as a real registry behind a load balancer would.

The package, one job a module: ``validation`` (what the registry accepts), ``storage`` (the
records, in memory or a SQLite file), ``faults`` (the settings and their draws), ``state``
(records, faults and statistics of one simulator), ``protocol`` (the HTTP API as a Flask/WSGI
app) and ``server`` (serving it).
"""

from .faults import Faults, FaultSettingError
from .protocol import (
    DEFAULT_PAGE_SIZE,
    MAX_BATCH_ITEMS,
    MAX_PAGE_SIZE,
    create_simulator_app,
    simulator_state,
)
from .server import SimulatorServer, serve_simulator
from .state import SimulatorState
from .storage import Registration, SimulatorStopped
from .validation import BEIJING, validate_invoice

__all__ = [
    "BEIJING",
    "DEFAULT_PAGE_SIZE",
    "MAX_BATCH_ITEMS",
    "MAX_PAGE_SIZE",
    "FaultSettingError",
    "Faults",
    "Registration",
    "SimulatorServer",
    "SimulatorState",
    "SimulatorStopped",
    "create_simulator_app",
    "serve_simulator",
    "simulator_state",
    "validate_invoice",
]
