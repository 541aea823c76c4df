"""Client for Beijing's invoice registry (protocol in DESIGN.md §6).

Every write is classified instead of raised, so the delivery worker can decide without
``try``/``except`` around the network:

- ``Outcome.SUCCESS``: 201 registered now, or 200 already registered with the same fields.
  Re-sending is safe because the registry keys writes by the invoice's identity.
- ``Outcome.TRANSIENT``: timeouts, connection failures, 5xx, 408, 429 (with ``retry_after``),
  unreadable answers. Try again later; a timed-out write may or may not have been stored,
  which the idempotent PUT makes harmless.
- ``Outcome.PERMANENT``: 422 invalid (``detail`` holds the registry's reasons by field), 409
  registered with different fields (``detail`` holds the registry's record) and any other 4xx.
  Retrying cannot help; staff must look.

Reads (``get_invoice``, ``list_invoices``) return data and raise ``RegistryError`` when the
registry cannot answer, because "not found" and "could not ask" must never be confused.

``message`` on results and errors is written for people, customers included: it never holds a
URL, a host name or an exception text. Those go to the log.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from portal.domain.errors import InvoiceRuleError
from portal.domain.identity import canonical_key

logger = logging.getLogger(__name__)

MAX_BATCH_ITEMS = 100
MAX_PAGE_SIZE = 1000
_POOL_SIZE = 32
_HEALTH_TIMEOUT = 2.0


class Outcome(enum.Enum):
    """How a delivery ended, as far as retrying is concerned."""

    SUCCESS = "success"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class DeliveryResult:
    """The classified answer to one invoice write.

    ``created`` tells a first registration (201) from a repeat with the same fields (200).
    ``retry_after`` is seconds to wait when the registry said so (429/503 Retry-After).
    ``detail`` is the registry's reasons by field for 422, or its stored record for 409.
    ``error_kind`` is a short machine string (``timeout``, ``connection``, ``http_503``,
    ``rate_limited``, ``bad_response``, ``invalid``, ``rejected``, ``conflict``, ``http_4xx``);
    None on success.
    """

    key: str
    outcome: Outcome
    status_code: int | None = None
    error_kind: str | None = None
    message: str = ""
    created: bool = False
    registry_id: str | None = None
    registered_at: datetime | None = None
    retry_after: float | None = None
    detail: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when the invoice is registered (now or before)."""
        return self.outcome is Outcome.SUCCESS

    @property
    def transient(self) -> bool:
        """True when trying again later may succeed."""
        return self.outcome is Outcome.TRANSIENT

    @property
    def permanent(self) -> bool:
        """True when trying again cannot succeed without a change by staff."""
        return self.outcome is Outcome.PERMANENT


class RegistryError(Exception):
    """A read could not be answered. ``transient`` says whether asking again may help;
    ``message`` is safe to show to people."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        error_kind: str,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.error_kind = error_kind
        self.status_code = status_code
        self.retry_after = retry_after


class InvoiceKeyError(ValueError):
    """An invoice's code and number do not form a registry key; ``field`` names the culprit
    (``code`` or ``number``) and the message is fit for a person."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def invoice_key(code: str | None, number: str) -> str:
    """Return the registry key of an invoice (the rule is ``portal.domain.identity``'s
    ``canonical_key``): ``{code}-{number}`` for a legacy invoice, the bare 20-digit number for a
    数电票 (no code).

    Raises InvoiceKeyError (a ValueError) when the pair has neither shape.
    """
    try:
        return canonical_key(code, number)
    except InvoiceRuleError as refused:
        raise InvoiceKeyError(refused.field or "number", refused.message("en")) from None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds (``"120"``) or an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``). None when absent or unreadable; never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is unreadable
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000" means UTC with an unknown origin
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


# Messages for people. No URLs, hosts or exception texts: those go to the log.
_MESSAGES = {
    "created": "The invoice is now registered with the registry.",
    "same": "The invoice was already registered with the same details.",
    "timeout": "The registry did not answer in time; we will try again automatically.",
    "connection": "The registry could not be reached; we will try again automatically.",
    "unavailable": "The registry is temporarily unavailable; we will try again automatically.",
    "rate_limited": "The registry asked us to slow down; we will try again shortly.",
    "bad_response": "The registry sent an unreadable answer; we will try again automatically.",
    "conflict": (
        "The registry already holds this invoice with different details; staff will review it."
    ),
    "refused": "The registry refused the request; staff will review it.",
}


def _transient(
    key: str,
    error_kind: str,
    message_name: str,
    status_code: int | None = None,
    retry_after: float | None = None,
) -> DeliveryResult:
    return DeliveryResult(
        key=key,
        outcome=Outcome.TRANSIENT,
        status_code=status_code,
        error_kind=error_kind,
        message=_MESSAGES[message_name],
        retry_after=retry_after,
    )


def _invalid(
    key: str, reasons: Mapping[str, Any], status_code: int | None, kind: str
) -> DeliveryResult:
    listed = "; ".join(f"{field}: {reason}" for field, reason in reasons.items())
    return DeliveryResult(
        key=key,
        outcome=Outcome.PERMANENT,
        status_code=status_code,
        error_kind=kind,
        message=f"The registry refused the invoice ({listed})." if listed else _MESSAGES["refused"],
        detail=dict(reasons),
    )


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def classify_answer(
    key: str, status_code: int, body: Any, retry_after: float | None = None
) -> DeliveryResult:
    """Classify the registry's answer to one write: a PUT response, or one batch item
    (``status`` and the rest of the item as ``body``)."""
    body = body if isinstance(body, dict) else {}
    if status_code in (200, 201):
        registered_at = _parse_time(body.get("registered_at"))
        registry_id = body.get("registry_id")
        if not isinstance(registry_id, str) or registered_at is None:
            # Stored, most likely; asking again gets a 200 with a readable answer.
            return _transient(key, "bad_response", "bad_response", status_code)
        return DeliveryResult(
            key=key,
            outcome=Outcome.SUCCESS,
            status_code=status_code,
            message=_MESSAGES["created" if status_code == 201 else "same"],
            created=status_code == 201,
            registry_id=registry_id,
            registered_at=registered_at,
        )
    if status_code == 429:
        return _transient(key, "rate_limited", "rate_limited", status_code, retry_after)
    if status_code == 408:
        return _transient(key, "timeout", "timeout", status_code, retry_after)
    if status_code >= 500:
        return _transient(key, f"http_{status_code}", "unavailable", status_code, retry_after)
    if status_code == 409:
        record = body.get("record")
        return DeliveryResult(
            key=key,
            outcome=Outcome.PERMANENT,
            status_code=status_code,
            error_kind="conflict",
            message=_MESSAGES["conflict"],
            detail=record if isinstance(record, dict) else {},
        )
    if status_code == 422:
        reasons = body.get("errors")
        kind = "rejected" if body.get("error") == "rejected" else "invalid"
        return _invalid(key, reasons if isinstance(reasons, dict) else {}, status_code, kind)
    # Other 4xx (400, 401, 403, 404, 413...): the request itself is wrong; repeating it won't
    # help, and a person has to look at the configuration or the data.
    return DeliveryResult(
        key=key,
        outcome=Outcome.PERMANENT,
        status_code=status_code,
        error_kind=f"http_{status_code}",
        message=_MESSAGES["refused"],
    )


def _wire_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # str() may give "1E+2"
    if isinstance(value, datetime):
        raise TypeError("issue dates travel as dates, not datetimes")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        raise TypeError("money travels as Decimal or str, never float")
    return value


def to_wire(invoice: Mapping[str, Any]) -> dict[str, Any]:
    """Return the invoice as the registry expects it: Decimal money as decimal strings,
    dates as YYYY-MM-DD, a missing code as "" (数电票). Floats raise TypeError."""
    wire = {name: _wire_value(value) for name, value in invoice.items()}
    if wire.get("code") is None:
        wire["code"] = ""
    return wire


def _key_or_refusal(invoice: Mapping[str, Any]) -> tuple[str, DeliveryResult | None]:
    code, number = invoice.get("code") or "", invoice.get("number") or ""
    try:
        return invoice_key(code, number), None
    except InvoiceKeyError as invalid:
        # Best effort, so staff can still see which invoice it was.
        attempted = f"{code}-{number}" if code else str(number)
        return attempted, _invalid(attempted, {invalid.field: str(invalid)}, None, "invalid")


class RegistryClient:
    """Speaks the registry protocol over one ``requests.Session``.

    The session's connection pool (``pool_maxsize`` 32) is reused across calls and threads; the
    registry sets no cookies, so sharing the session between worker threads is safe. There are
    no automatic retries: the caller owns the retry policy and the backoff. ``connect_timeout``
    and ``read_timeout`` are seconds; the read timeout applies to each wait for data, not to the
    whole response.
    """

    def __init__(
        self,
        base_url: str,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        """Create a client for the registry at ``base_url``. A given ``session`` is used as is
        and not closed by ``close()``."""
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self._owns_session = session is None
        self.session = session if session is not None else self._new_session()

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=_POOL_SIZE, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(
            {"Accept": "application/json", "User-Agent": "invoice-reentry-portal/registry-client"}
        )
        return session

    def close(self) -> None:
        """Close the pooled connections, if this client created the session."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _invoice_url(self, key: str) -> str:
        return self._url(f"/v1/invoices/{quote(key, safe='')}")

    def _send(
        self, key: str, method: str, url: str, **kwargs: Any
    ) -> requests.Response | DeliveryResult:
        """Send a request; a network failure comes back as a TRANSIENT result."""
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as failure:
            logger.warning("registry %s %s timed out: %s", method, url, failure)
            return _transient(key, "timeout", "timeout")
        except requests.RequestException as failure:
            logger.warning("registry %s %s failed: %s", method, url, failure)
            return _transient(key, "connection", "connection")

    def put_invoice(self, invoice: Mapping[str, Any]) -> DeliveryResult:
        """Register one invoice (idempotent: sending it again is safe) and classify the answer.

        An invoice whose code and number have no valid key shape is refused locally as
        PERMANENT ``invalid`` without contacting the registry.
        """
        wire = to_wire(invoice)
        key, refusal = _key_or_refusal(wire)
        if refusal is not None:
            return refusal
        answer = self._send(key, "PUT", self._invoice_url(key), json=wire)
        if isinstance(answer, DeliveryResult):
            return answer
        return classify_answer(
            key,
            answer.status_code,
            _json_or_none(answer),
            parse_retry_after(answer.headers.get("Retry-After")),
        )

    def put_batch(self, invoices: list[Mapping[str, Any]]) -> list[DeliveryResult]:
        """Register many invoices, one result per invoice in the same order.

        Sends batches of at most 100. A failure of a whole batch request (timeout, 5xx, 429,
        unreadable answer) gives every invoice in it the same TRANSIENT result.
        """
        results: dict[int, DeliveryResult] = {}
        pending: list[tuple[int, str, dict[str, Any]]] = []
        for position, invoice in enumerate(invoices):
            wire = to_wire(invoice)
            key, refusal = _key_or_refusal(wire)
            if refusal is not None:
                results[position] = refusal
            else:
                pending.append((position, key, wire))
        for start in range(0, len(pending), MAX_BATCH_ITEMS):
            chunk = pending[start : start + MAX_BATCH_ITEMS]
            keys = [key for _, key, _ in chunk]
            answers = self._send_batch(keys, [wire for _, _, wire in chunk])
            for (position, _, _), result in zip(chunk, answers, strict=True):
                results[position] = result
        return [results[position] for position in range(len(invoices))]

    def _send_batch(self, keys: list[str], invoices: list[dict[str, Any]]) -> list[DeliveryResult]:
        answer = self._send(
            "", "POST", self._url("/v1/invoices:batch"), json={"invoices": invoices}
        )
        if isinstance(answer, DeliveryResult):
            return [_with_key(answer, key) for key in keys]
        payload = _json_or_none(answer)
        if answer.status_code != 200:
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            whole = classify_answer("", answer.status_code, payload, retry_after)
            return [_with_key(whole, key) for key in keys]
        items = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(items, list) or len(items) != len(keys):
            logger.warning("registry batch answer unreadable: %.200r", payload)
            return [_transient(key, "bad_response", "bad_response", 200) for key in keys]
        results = []
        for key, item in zip(keys, items, strict=True):
            status = item.get("status") if isinstance(item, dict) else None
            # Items come back in the order sent; a different key means the answer is garbled.
            if not isinstance(status, int) or item.get("key") not in (key, None):
                results.append(_transient(key, "bad_response", "bad_response", 200))
            else:
                results.append(classify_answer(key, status, item))
        return results

    def get_invoice(self, key: str) -> dict[str, Any] | None:
        """Return the registry's record under ``key``, or None if it has none.

        Raises RegistryError when the registry cannot answer.
        """
        response = self._read(self._invoice_url(key))
        if response.status_code == 404:
            return None
        record = _json_or_none(response)
        if response.status_code != 200 or not isinstance(record, dict):
            raise _read_error(response)
        return record

    def list_invoices(
        self, since: str | None = None, limit: int = MAX_PAGE_SIZE
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of the registry's records in registration order, and the cursor of
        the next page (None after the last page). Raises RegistryError on failure."""
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since
        response = self._read(self._url("/v1/invoices"), params=params)
        page = _json_or_none(response)
        if response.status_code != 200 or not isinstance(page, dict):
            raise _read_error(response)
        invoices, next_cursor = page.get("invoices"), page.get("next_cursor")
        if not isinstance(invoices, list) or not isinstance(next_cursor, str | None):
            raise _read_error(response)
        return invoices, next_cursor

    def iter_invoices(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Yield every record the registry holds, page by page, each exactly once."""
        cursor = None
        while True:
            invoices, cursor = self.list_invoices(since=cursor, limit=page_size)
            yield from invoices
            if cursor is None:
                return

    def health(self) -> bool:
        """True when the registry answers its health check within two seconds."""
        try:
            response = self.session.get(
                self._url("/healthz"), timeout=(self.timeout[0], _HEALTH_TIMEOUT)
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def _read(self, url: str, **kwargs: Any) -> requests.Response:
        answer = self._send("", "GET", url, **kwargs)
        if isinstance(answer, DeliveryResult):
            raise RegistryError(answer.message, transient=True, error_kind=answer.error_kind or "")
        return answer


def _with_key(result: DeliveryResult, key: str) -> DeliveryResult:
    return replace(result, key=key)


def _json_or_none(response: requests.Response) -> Any:
    from ..support.jsonbody import loads

    try:
        return loads(response.content)  # a hostile answer nested deep is unreadable, not a crash
    except ValueError:
        return None


def _read_error(response: requests.Response) -> RegistryError:
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    result = classify_answer("", response.status_code, _json_or_none(response), retry_after)
    if result.ok:  # a 2xx we could not read
        result = _transient("", "bad_response", "bad_response", response.status_code)
    return RegistryError(
        result.message,
        transient=result.transient,
        error_kind=result.error_kind or "bad_response",
        status_code=response.status_code,
        retry_after=result.retry_after,
    )
