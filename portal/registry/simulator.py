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
"""

from __future__ import annotations

import json
import math
import random
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from socketserver import TCPServer, ThreadingMixIn
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import LimitedStream

MAX_BATCH_ITEMS = 100
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

INVOICE_FIELDS = (
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
MONEY_FIELDS = ("amount", "tax", "total")
# Absent or null means "": 数电票 have no code and no check code; individuals have no tax ID.
OPTIONAL_FIELDS = frozenset({"code", "check_code", "buyer_tax_id"})

# The registry is in Beijing: "in the future" means after today there. China has no daylight
# saving time, so a fixed offset is exact and needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

# [0-9], never \d: \d and Decimal() both accept full-width and other Unicode digits.
_CODE = re.compile(r"[0-9]{10}|[0-9]{12}")
_LEGACY_NUMBER = re.compile(r"[0-9]{8}")
_DIGITAL_NUMBER = re.compile(r"[0-9]{20}")
_CHECK_CODE = re.compile(r"[0-9]{20}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONEY = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
# 18-character unified social credit codes and the older 15-20 character taxpayer IDs. Only the
# shape is checked: the registry does not know every taxpayer either.
_TAX_ID = re.compile(r"[0-9A-Z]{15,20}")
_CURSOR = re.compile(r"[0-9]{1,18}")
_CENT = Decimal("0.01")
_MAX_MONEY_DIGITS = 15
_MAX_NAME_LENGTH = 200
_MAX_KIND_LENGTH = 32

_EXTENSION = "registry_simulator"


# --------------------------------------------------------------------------------------------
# Validation: what the registry accepts.


def validate_invoice(body: Mapping[str, Any]) -> tuple[str | None, dict[str, str], dict[str, str]]:
    """Check an invoice as the registry does.

    Returns ``(key, canonical_fields, errors)``. ``key`` is derived from ``code`` and ``number``
    and is None when they are malformed; ``canonical_fields`` holds every invoice field with
    money written with exactly two decimals (so "6.2" and "6.20" are the same invoice) and is
    only meaningful when ``errors`` is empty. Unknown fields are ignored.
    """
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for name in INVOICE_FIELDS:
        raw = body.get(name)
        if raw is None or raw == "":
            if name not in OPTIONAL_FIELDS:
                errors[name] = "is required"
            values[name] = ""
        elif not isinstance(raw, str):
            errors[name] = "must be a string"
        else:
            values[name] = raw

    key = _check_identity(values, errors)
    _check_issue_date(values, errors)
    _check_money(values, errors)
    _check_parties(values, errors)
    if values.get("kind") and len(values["kind"]) > _MAX_KIND_LENGTH:
        errors["kind"] = f"must be at most {_MAX_KIND_LENGTH} characters"
    check_code = values.get("check_code")
    if check_code and not _CHECK_CODE.fullmatch(check_code):
        errors["check_code"] = "must be empty or 20 digits"
    return key, values, errors


def _check_identity(values: dict[str, str], errors: dict[str, str]) -> str | None:
    if "code" in errors or "number" in errors:
        return None
    code, number = values["code"], values["number"]
    if code and not _CODE.fullmatch(code):
        errors["code"] = "must be empty (数电票) or 10 or 12 digits"
        return None
    if code and not _LEGACY_NUMBER.fullmatch(number):
        errors["number"] = "must be 8 digits for an invoice with a code"
        return None
    if not code and not _DIGITAL_NUMBER.fullmatch(number):
        errors["number"] = "must be 20 digits for a 数电票 (an invoice without a code)"
        return None
    return f"{code}-{number}" if code else number


def _check_issue_date(values: dict[str, str], errors: dict[str, str]) -> None:
    text = values.get("issue_date")
    if not text:
        return
    if not _ISO_DATE.fullmatch(text):
        errors["issue_date"] = "must be a date written YYYY-MM-DD"
        return
    try:
        issued = date.fromisoformat(text)
    except ValueError:
        errors["issue_date"] = "is not a valid calendar date"
        return
    if issued > datetime.now(BEIJING).date():
        errors["issue_date"] = "must not be in the future"


def _check_money(values: dict[str, str], errors: dict[str, str]) -> None:
    amounts: dict[str, Decimal] = {}
    for name in MONEY_FIELDS:
        text = values.get(name)
        if not text:
            continue
        match = _MONEY.fullmatch(text)
        if match is None:
            errors[name] = "must be a decimal number written like 123.45"
            continue
        sign, whole, fraction = match.groups()
        if sign:
            errors[name] = "must not be negative"
        elif fraction is not None and len(fraction) > 2:
            errors[name] = "must have at most 2 decimal places"
        elif len(whole.lstrip("0")) > _MAX_MONEY_DIGITS:
            errors[name] = "is too large"
        else:
            amounts[name] = Decimal(text).quantize(_CENT)
            values[name] = str(amounts[name])
    if len(amounts) == len(MONEY_FIELDS) and amounts["amount"] + amounts["tax"] != amounts["total"]:
        errors["total"] = (
            f"must equal amount + tax ({amounts['amount'] + amounts['tax']}), "
            f"got {amounts['total']}"
        )


def _check_parties(values: dict[str, str], errors: dict[str, str]) -> None:
    for name in ("buyer_tax_id", "seller_tax_id"):
        tax_id = values.get(name)
        if tax_id and not _TAX_ID.fullmatch(tax_id):
            errors[name] = "must be 15 to 20 capital letters and digits"
    buyer_name = values.get("buyer_name")
    if buyer_name and not buyer_name.strip():
        errors["buyer_name"] = "is required"
    elif buyer_name and len(buyer_name) > _MAX_NAME_LENGTH:
        errors["buyer_name"] = f"must be at most {_MAX_NAME_LENGTH} characters"


# --------------------------------------------------------------------------------------------
# Faults: what goes wrong, on purpose.


class FaultSettingError(ValueError):
    """A fault setting was refused; ``errors`` maps each bad field to a reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Faults:
    """The failures the simulator injects; all off by default.

    Rates are probabilities in 0..1. ``rate_limit`` is requests per second across the whole
    simulator (0 or None: unlimited). ``timeout_seconds`` is how long a timed-out request hangs
    (None: the client timeout hint + 1 s). ``seed`` makes the random draws reproducible.
    """

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_after_store_rate: float = 0.0
    reject_rate: float = 0.0
    latency_ms: float = 0.0
    outage: bool = False
    rate_limit: float | None = None
    timeout_seconds: float | None = None
    seed: int | None = None

    def merged(self, changes: Mapping[str, Any]) -> Faults:
        """Return these faults with ``changes`` applied; raise FaultSettingError if any is bad."""
        known = {spec.name for spec in fields(self)}
        errors: dict[str, str] = {}
        accepted: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                errors[name] = "is not a known fault"
                continue
            reason = _fault_value_error(name, value)
            if reason:
                errors[name] = reason
            else:
                accepted[name] = value
        if errors:
            raise FaultSettingError(errors)
        return replace(self, **accepted)


def _is_number(value: Any) -> bool:
    # bool is an int subclass; "true" is not a rate.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fault_value_error(name: str, value: Any) -> str | None:
    if name.endswith("_rate"):
        return None if _is_number(value) and 0 <= value <= 1 else "must be a number from 0 to 1"
    if name == "latency_ms":
        ok = _is_number(value) and 0 <= value <= 60_000
        return None if ok else "must be a number of milliseconds from 0 to 60000"
    if name == "outage":
        return None if isinstance(value, bool) else "must be true or false"
    if name == "rate_limit":
        ok = value is None or (_is_number(value) and value >= 0)
        return None if ok else "must be null or a number of requests per second (0: unlimited)"
    if name == "timeout_seconds":
        ok = value is None or (_is_number(value) and 0 < value <= 300)
        return None if ok else "must be null or a number of seconds from 0 to 300"
    if name == "seed":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
        return None if ok else "must be null or an integer"
    return "is not a known fault"


class SimulatorStopped(RuntimeError):
    """The simulator's storage was closed while a request was still running."""


# --------------------------------------------------------------------------------------------
# State: records, statistics, faults. One lock guards it all; the server is threaded.


@dataclass(frozen=True)
class Registration:
    """What happened to one invoice written to storage."""

    status: int  # 201 created, 200 same fields, 409 different fields
    record: dict[str, str]  # the record now stored under the key
    differences: tuple[str, ...] = ()


class SimulatorState:
    """Storage, statistics and fault settings of one simulator; safe to share between threads.

    Records live in SQLite (a file when ``storage_path`` is given, else memory). Statistics and
    faults live in memory and start empty for every instance.
    """

    def __init__(self, storage_path: str | None = None, client_timeout_hint: float = 5.0) -> None:
        self.client_timeout_hint = client_timeout_hint
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            storage_path or ":memory:", check_same_thread=False, isolation_level=None
        )
        if storage_path:
            # WAL with synchronous=NORMAL: a commit per registration stays cheap under load.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS invoices ("
            " seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, registry_id TEXT NOT NULL,"
            " registered_at TEXT NOT NULL, fields TEXT NOT NULL)"
        )
        (last_seq,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM invoices").fetchone()
        self._next_seq = last_seq + 1
        self._clear_runtime_state()

    def _clear_runtime_state(self) -> None:
        self.faults = Faults()
        self._rng = random.Random()
        self._tokens = 0.0
        self._tokens_at = time.monotonic()
        self._requests: Counter[str] = Counter()
        self._batch_items: Counter[str] = Counter()
        self._duplicates = 0
        self._conflicts = 0
        self._connections: set[tuple[str, int]] = set()

    def _storage(self) -> sqlite3.Connection:
        if self._db is None:
            raise SimulatorStopped("the simulator has been stopped")
        return self._db

    # Records --------------------------------------------------------------------------------

    def register(self, entries: list[tuple[str, dict[str, str]]]) -> list[Registration]:
        """Store each ``(key, canonical_fields)`` in order, in one transaction.

        An unknown key is created; a known key with equal fields is a duplicate (200); a known
        key with other fields is a conflict (409) and the stored record is left unchanged.
        """
        results = []
        with self._lock:
            db = self._storage()
            db.execute("BEGIN")
            try:
                for key, invoice in entries:
                    results.append(self._register_one(db, key, invoice))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return results

    def _register_one(
        self, db: sqlite3.Connection, key: str, invoice: dict[str, str]
    ) -> Registration:
        row = db.execute(
            "SELECT key, registry_id, registered_at, fields FROM invoices WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            seq = self._next_seq
            registry_id = f"BJR{seq:012d}"
            registered_at = datetime.now(UTC).isoformat(timespec="microseconds")
            registered_at = registered_at.replace("+00:00", "Z")
            db.execute(
                "INSERT INTO invoices (seq, key, registry_id, registered_at, fields)"
                " VALUES (?, ?, ?, ?, ?)",
                (seq, key, registry_id, registered_at, json.dumps(invoice)),
            )
            self._next_seq += 1
            return Registration(201, _record(key, registry_id, registered_at, invoice))
        stored = _record(*row[:3], json.loads(row[3]))
        differences = tuple(name for name in INVOICE_FIELDS if stored[name] != invoice[name])
        if differences:
            self._conflicts += 1
            return Registration(409, stored, differences)
        self._duplicates += 1
        return Registration(200, stored)

    def find(self, key: str) -> dict[str, str] | None:
        """Return the record registered under ``key``, or None."""
        with self._lock:
            row = (
                self._storage()
                .execute(
                    "SELECT key, registry_id, registered_at, fields FROM invoices WHERE key = ?",
                    (key,),
                )
                .fetchone()
            )
        return None if row is None else _record(*row[:3], json.loads(row[3]))

    def page(self, after_seq: int, limit: int) -> tuple[list[dict[str, str]], int | None]:
        """Return up to ``limit`` records registered after ``after_seq``, and the last seq
        returned if more records follow (else None)."""
        with self._lock:
            rows = (
                self._storage()
                .execute(
                    "SELECT seq, key, registry_id, registered_at, fields FROM invoices"
                    " WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit + 1),
                )
                .fetchall()
            )
        more = len(rows) > limit
        rows = rows[:limit]
        records = [_record(*row[1:4], json.loads(row[4])) for row in rows]
        return records, (rows[-1][0] if more else None)

    # Faults ---------------------------------------------------------------------------------

    def set_faults(self, changes: Mapping[str, Any]) -> Faults:
        """Merge ``changes`` into the fault settings and return them (FaultSettingError if bad)."""
        with self._lock:
            self.faults = self.faults.merged(changes)
            if "seed" in changes:
                self._rng.seed(self.faults.seed)
            if "rate_limit" in changes:
                self._tokens = _bucket_capacity(self.faults.rate_limit)
                self._tokens_at = time.monotonic()
            return self.faults

    def chance(self, rate: float) -> bool:
        """Draw once: True with probability ``rate``."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        with self._lock:
            return self._rng.random() < rate

    def pick_error_status(self) -> int:
        """The status of an injected error: 500 or 503, as a real registry varies."""
        with self._lock:
            return self._rng.choice((500, 503))

    def take_rate_token(self) -> int | None:
        """Admit one request under ``rate_limit``; return None, or the whole seconds to wait.

        A token bucket holding one second's worth of requests: bursts up to the rate pass,
        a sustained excess is refused.
        """
        rate = self.faults.rate_limit
        if not rate:
            return None
        with self._lock:
            now = time.monotonic()
            capacity = _bucket_capacity(rate)
            self._tokens = min(capacity, self._tokens + (now - self._tokens_at) * rate)
            self._tokens_at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            # Retry-After carries whole seconds; never tell a client to retry at once.
            return max(1, math.ceil((1 - self._tokens) / rate))

    def timeout_seconds(self) -> float:
        """How long an injected timeout hangs: longer than the client waits, unless configured."""
        configured = self.faults.timeout_seconds
        return configured if configured is not None else self.client_timeout_hint + 1

    # Statistics -----------------------------------------------------------------------------

    def count(self, outcome: str, batch_items: Counter[str] | None = None) -> None:
        """Count one request by outcome (and, for a batch, its items by outcome)."""
        with self._lock:
            self._requests[outcome] += 1
            if batch_items:
                self._batch_items.update(batch_items)

    def note_connection(self, address: str | None, port: int | None) -> None:
        """Remember a client's (address, port): distinct pairs are distinct TCP connections."""
        if address is not None and port is not None:
            with self._lock:
                self._connections.add((address, port))

    def stats(self) -> dict[str, Any]:
        """Requests by outcome, batch items by outcome, records, duplicates, conflicts and the
        number of distinct client connections seen on protocol requests."""
        with self._lock:
            (records,) = self._storage().execute("SELECT COUNT(*) FROM invoices").fetchone()
            return {
                "requests": dict(self._requests),
                "batch_items": dict(self._batch_items),
                "records": records,
                "duplicates": self._duplicates,
                "conflicts": self._conflicts,
                "connections": len(self._connections),
            }

    def reset(self) -> None:
        """Forget every record, statistic and fault."""
        with self._lock:
            self._storage().execute("DELETE FROM invoices")
            self._next_seq = 1
            self._clear_runtime_state()

    def close(self) -> None:
        """Close the storage; later requests answer 503."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _bucket_capacity(rate: float | None) -> float:
    return max(1.0, rate or 0.0)


def _record(
    key: str, registry_id: str, registered_at: str, invoice: dict[str, str]
) -> dict[str, str]:
    return {"key": key, **invoice, "registry_id": registry_id, "registered_at": registered_at}


# --------------------------------------------------------------------------------------------
# The Flask app.


def create_simulator_app(
    storage_path: str | None = None, client_timeout_hint: float = 5.0
) -> Flask:
    """Build the registry simulator as a standalone Flask app.

    ``storage_path`` is a SQLite file that keeps records across restarts (None: memory only).
    ``client_timeout_hint`` is the read timeout clients are expected to use; an injected
    timeout hangs one second longer unless the ``timeout_seconds`` fault says otherwise. The
    state is reachable as ``simulator_state(app)``.
    """
    app = Flask(__name__, static_folder=None)
    from ..support.jsonbody import SafeJSONProvider

    app.json = SafeJSONProvider(app)  # a body nested too deep is bad JSON, not a RecursionError
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
    app.json.sort_keys = False  # keep records in protocol field order
    app.extensions[_EXTENSION] = SimulatorState(storage_path, client_timeout_hint)
    app.before_request(_inject_request_faults)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(SimulatorStopped, _stopped)

    app.add_url_rule("/v1/invoices/<key>", view_func=_put_invoice, methods=["PUT"])
    app.add_url_rule("/v1/invoices/<key>", view_func=_get_invoice, methods=["GET"])
    app.add_url_rule("/v1/invoices", view_func=_list_invoices, methods=["GET"])
    app.add_url_rule("/v1/invoices:batch", view_func=_put_batch, methods=["POST"])
    app.add_url_rule("/healthz", view_func=_health, methods=["GET"])
    app.add_url_rule("/_sim/faults", view_func=_get_faults, methods=["GET"])
    app.add_url_rule("/_sim/faults", view_func=_put_faults, methods=["PUT"])
    app.add_url_rule("/_sim/stats", view_func=_get_stats, methods=["GET"])
    app.add_url_rule("/_sim/reset", view_func=_reset, methods=["POST"])
    return app


def simulator_state(app: Flask) -> SimulatorState:
    """Return the state of a simulator app built by ``create_simulator_app``."""
    return app.extensions[_EXTENSION]


def _state() -> SimulatorState:
    return simulator_state(current_app)


def _failure(status: int, error: str, message: str, **extra: Any) -> tuple[dict[str, Any], int]:
    return {"error": error, "message": message, **extra}, status


def _inject_request_faults() -> Any:
    if not request.path.startswith("/v1/"):
        return None
    state = _state()
    state.note_connection(request.remote_addr, request.environ.get("REMOTE_PORT"))
    faults = state.faults
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000)
    if faults.outage:
        state.count("outage")
        return _failure(503, "unavailable", "The registry is down for maintenance.")
    retry_after = state.take_rate_token()
    if retry_after is not None:
        state.count("rate_limited")
        body, status = _failure(429, "rate_limited", "Too many requests; slow down.")
        return body, status, {"Retry-After": str(retry_after)}
    if state.chance(faults.error_rate):
        state.count("error")
        return _failure(state.pick_error_status(), "internal_error", "The registry failed.")
    if state.chance(faults.timeout_rate):
        state.count("timeout")
        return _hang_then_gateway_timeout(state)
    return None


def _hang_then_gateway_timeout(state: SimulatorState) -> tuple[dict[str, Any], int]:
    # By the time this answers, a client with a shorter read timeout has given up.
    time.sleep(state.timeout_seconds())
    return _failure(504, "timeout", "The registry did not answer in time.")


def _http_error(error: HTTPException) -> tuple[dict[str, Any], int]:
    name = (error.name or "error").lower().replace(" ", "_")
    return _failure(error.code or 500, name, error.description or "")


def _stopped(_error: SimulatorStopped) -> tuple[dict[str, Any], int]:
    return _failure(503, "unavailable", "The registry simulator is shutting down.")


def _json_object_body() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


_Refusal = tuple[dict[str, Any], int]


def _evaluate(
    item: Any, state: SimulatorState, url_key: str | None = None
) -> tuple[str | None, dict[str, str] | None, _Refusal | None]:
    """Validate one invoice; return its key and either the fields to store or the refusal."""
    if not isinstance(item, dict):
        errors = {"invoice": "must be a JSON object"}
        return None, None, _failure(422, "invalid", "The invoice is refused.", errors=errors)
    key, invoice, errors = validate_invoice(item)
    if url_key is not None and key is not None and key != url_key:
        errors["key"] = f"does not match code and number in the body ({key})"
    if errors:
        return key, None, _failure(422, "invalid", "The invoice is refused.", errors=errors)
    if state.chance(state.faults.reject_rate):
        errors = {"invoice": "rejected by simulator"}
        return key, None, _failure(422, "rejected", "The invoice is refused.", errors=errors)
    return key, invoice, None


_OUTCOME_BY_STATUS = {201: "created", 200: "same", 409: "conflict"}


def _registration_body(registration: Registration) -> tuple[dict[str, Any], int]:
    if registration.status == 409:
        return _failure(
            409,
            "conflict",
            "Another invoice with different fields is registered under this key.",
            record=registration.record,
            differences=list(registration.differences),
        )
    return registration.record, registration.status


def _outcome_of_refusal(body: dict[str, Any]) -> str:
    return "rejected" if body.get("error") == "rejected" else "invalid"


def _put_invoice(key: str) -> Any:
    state = _state()
    body = _json_object_body()
    if body is None:
        state.count("bad_request")
        return _failure(400, "bad_request", "The body must be a JSON object.")
    _, invoice, refusal = _evaluate(body, state, url_key=key)
    if refusal is not None:
        state.count(_outcome_of_refusal(refusal[0]))
        return refusal
    (registration,) = state.register([(key, invoice)])
    if state.chance(state.faults.timeout_after_store_rate):
        state.count("timeout_after_store")
        return _hang_then_gateway_timeout(state)
    state.count(_OUTCOME_BY_STATUS[registration.status])
    response_body, status = _registration_body(registration)
    return response_body, status


def _get_invoice(key: str) -> Any:
    state = _state()
    record = state.find(key)
    if record is None:
        state.count("not_found")
        return _failure(404, "not_found", "No invoice is registered under this key.")
    state.count("found")
    return record


def _list_invoices() -> Any:
    state = _state()
    errors = {}
    since = request.args.get("since") or "0"
    if not _CURSOR.fullmatch(since):
        errors["since"] = "is not a cursor this registry issued"
    limit_text = request.args.get("limit", str(DEFAULT_PAGE_SIZE))
    limit = int(limit_text) if limit_text.isascii() and limit_text.isdigit() else 0
    if limit < 1:
        errors["limit"] = f"must be a whole number from 1 to {MAX_PAGE_SIZE}"
    if errors:
        state.count("bad_request")
        return _failure(400, "bad_request", "The listing parameters are wrong.", errors=errors)
    records, last_seq = state.page(int(since), min(limit, MAX_PAGE_SIZE))
    state.count("listed")
    return {"invoices": records, "next_cursor": None if last_seq is None else str(last_seq)}


def _put_batch() -> Any:
    state = _state()
    body = _json_object_body()
    if body is None or not isinstance(body.get("invoices"), list):
        state.count("bad_request")
        return _failure(400, "bad_request", 'The body must be {"invoices": [...]}.')
    items = body["invoices"]
    if len(items) > MAX_BATCH_ITEMS:
        state.count("invalid")
        return _failure(
            422,
            "invalid",
            "The batch is refused.",
            errors={"invoices": f"at most {MAX_BATCH_ITEMS} invoices per batch, got {len(items)}"},
        )

    results: list[dict[str, Any] | None] = []
    to_store: list[tuple[int, str, dict[str, str]]] = []
    item_outcomes: Counter[str] = Counter()
    for position, item in enumerate(items):
        key, invoice, refusal = _evaluate(item, state)
        if refusal is not None:
            refusal_body, status = refusal
            item_outcomes[_outcome_of_refusal(refusal_body)] += 1
            results.append({"key": key, "status": status, **refusal_body})
        else:
            to_store.append((position, key, invoice))
            results.append(None)
    registrations = state.register([(key, invoice) for _, key, invoice in to_store])
    for (position, key, _), registration in zip(to_store, registrations, strict=True):
        item_outcomes[_OUTCOME_BY_STATUS[registration.status]] += 1
        item_body, status = _registration_body(registration)
        results[position] = {"key": key, "status": status, **item_body}

    if to_store and state.chance(state.faults.timeout_after_store_rate):
        state.count("timeout_after_store", item_outcomes)
        return _hang_then_gateway_timeout(state)
    state.count("batch", item_outcomes)
    return {"results": results}


def _health() -> Any:
    if _state().faults.outage:
        return {"ok": False}, 503
    return {"ok": True}


def _get_faults() -> Any:
    return asdict(_state().faults)


def _put_faults() -> Any:
    body = _json_object_body()
    if body is None:
        return _failure(400, "bad_request", "The body must be a JSON object of fault settings.")
    try:
        return asdict(_state().set_faults(body))
    except FaultSettingError as refused:
        return _failure(400, "bad_request", "Some fault settings are wrong.", errors=refused.errors)


def _get_stats() -> Any:
    return _state().stats()


def _reset() -> Any:
    _state().reset()
    return {"ok": True}


# --------------------------------------------------------------------------------------------
# Serving.


# A body the app left unread is skipped up to this size; past it the connection is closed.
_MAX_BODY_TO_SKIP = 4 * 1024 * 1024


class _KeepAliveServerHandler(ServerHandler):
    """wsgiref's per-request handler, answering as HTTP/1.1."""

    http_version = "1.1"
    delimited = False

    def close(self) -> None:
        """Note whether the response carried a Content-Length before wsgiref forgets it."""
        self.delimited = self.headers is not None and "Content-Length" in self.headers
        super().close()


class _KeepAliveRequestHandler(WSGIRequestHandler):
    """Serves request after request on one connection (HTTP/1.1 keep-alive).

    werkzeug's development server closes every connection, and wsgiref's serves one request
    per connection; a registry client reuses its connections, and the simulator has to let it
    or benchmarks measure TCP handshakes instead of the portal.
    """

    protocol_version = "HTTP/1.1"
    # wsgiref writes the headers and the body separately; with Nagle's algorithm on a kept
    # connection the body then waits for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True

    def handle(self) -> None:
        """Serve requests until the client closes or one cannot be framed on a kept connection."""
        self.close_connection = False
        while not self.close_connection:
            try:
                self._serve_one_request()
            except OSError:  # the client went away, perhaps mid-response after a timeout fault
                self.close_connection = True

    def _serve_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return
        if not self.parse_request():  # it has answered with an error and chosen to close
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "Send a Content-Length")
            self.close_connection = True
            return
        length = self.headers.get("Content-Length", "0").strip()
        if not (length.isascii() and length.isdigit()):
            self.send_error(400, "Bad Content-Length")
            self.close_connection = True
            return

        environ = self.get_environ()
        environ["REMOTE_PORT"] = self.client_address[1]
        # The app may leave the body unread (a fault answers before parsing it); bound the
        # stream so the rest can be skipped and the next request starts where it should.
        body = LimitedStream(self.rfile, int(length))
        handler = _KeepAliveServerHandler(
            body, self.wfile, self.get_stderr(), environ, multithread=True
        )
        handler.request_handler = self  # wsgiref logs through it
        handler.run(self.server.get_app())

        unread = body.limit - body.tell()
        if unread > _MAX_BODY_TO_SKIP or not handler.delimited:
            self.close_connection = True
        elif unread:
            body.exhaust()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Write the access log line unless the server is quiet."""
        if not self.server.quiet:
            super().log_request(code, size)


class _ThreadedWSGIServer(ThreadingMixIn, WSGIServer):
    """A thread per connection, so slow (latency, timeout) requests do not hold up others."""

    daemon_threads = True  # idle kept-alive connections must not keep the process alive
    request_queue_size = 128  # bursts of new connections from many workers
    allow_reuse_address = True
    quiet = False  # True: no access log line per request (benchmarks make millions)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host (slow without DNS)."""
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()


def _make_server(app: Flask, host: str, port: int, *, quiet: bool) -> _ThreadedWSGIServer:
    server = _ThreadedWSGIServer((host, port), _KeepAliveRequestHandler)
    server.quiet = quiet
    server.set_app(app)
    return server


def serve_simulator(
    host: str,
    port: int,
    storage_path: str | None,
    *,
    client_timeout_hint: float = 5.0,
    quiet: bool = False,
) -> None:
    """Serve the simulator on ``host:port`` until interrupted (Ctrl-C).

    Used by ``flask registry simulate``. The server is threaded and keeps connections alive;
    ``quiet`` drops the per-request access log.
    """
    app = create_simulator_app(storage_path, client_timeout_hint)
    server = _make_server(app, host, port, quiet=quiet)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        simulator_state(app).close()


class SimulatorServer:
    """A simulator served from a background thread, for tests and benchmarks.

    Binds at construction (port 0 picks a free port), so ``url`` is known before ``start()``::

        with SimulatorServer() as simulator:
            client = RegistryClient(simulator.url)
            simulator.state.set_faults({"error_rate": 0.3})
    """

    def __init__(
        self,
        storage_path: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_timeout_hint: float = 5.0,
        quiet: bool = True,
    ) -> None:
        """Build the app and bind the socket; nothing is served until ``start()``."""
        self.app = create_simulator_app(storage_path, client_timeout_hint)
        self.state = simulator_state(self.app)
        self._server = _make_server(self.app, host, port, quiet=quiet)
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> SimulatorServer:
        """Serve from a daemon thread; return self."""
        if self._thread is None:
            # A short poll interval makes stop() quick, which keeps test suites fast.
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"registry-simulator-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and the storage. Requests still hanging on an
        injected timeout finish on their own daemon threads."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self.state.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
