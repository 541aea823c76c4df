"""The registry protocol of DESIGN.md §6 as a WSGI (Flask) app: routes, request validation,
the order in which faults apply, and the operator endpoints. The protocol itself is described
in the package docstring (``portal.registry.simulator``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException

from .faults import FaultSettingError
from .state import SimulatorState
from .storage import Registration, SimulatorStopped
from .validation import validate_invoice

MAX_BATCH_ITEMS = 100
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_CURSOR = re.compile(r"[0-9]{1,18}")
_EXTENSION = "registry_simulator"


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
    from ...support.jsonbody import SafeJSONProvider

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
    state.injector.delay(faults)
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
    state.injector.hang()
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
