"""The registry client against a real simulator over HTTP: every answer classified as the
delivery worker needs it, reads, batches, failures and connection reuse."""

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from portal.registry import (
    InvoiceKeyError,
    Outcome,
    RegistryClient,
    RegistryError,
    invoice_key,
    parse_retry_after,
)


def assert_safe_for_customers(result, simulator):
    """Messages are shown to people: no URLs, hosts or ports."""
    assert result.message
    for leak in (simulator.url, "127.0.0.1", "http", str(simulator.url.rsplit(":", 1)[1])):
        assert leak not in result.message


# --- Keys and Retry-After --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "number", "key"),
    [
        ("1100194130", "12345678", "1100194130-12345678"),
        ("011001900111", "51142414", "011001900111-51142414"),
        ("", "25117000001115703415", "25117000001115703415"),
        (None, "25117000001115703415", "25117000001115703415"),
    ],
)
def test_invoice_key_of_legacy_and_digital_invoices(code, number, key):
    assert invoice_key(code, number) == key


@pytest.mark.parametrize(
    ("code", "number", "field"),
    [
        ("11001941", "12345678", "code"),
        ("1100194130", "1234567", "number"),
        ("1100194130", "25117000001115703415", "number"),
        ("", "51142414", "number"),
        ("", "２５１１７０００００１１１５７０３４１５", "number"),  # full-width digits
        ("01100190011a", "51142414", "code"),
    ],
)
def test_invoice_key_refuses_other_shapes(code, number, field):
    with pytest.raises(InvoiceKeyError) as refused:
        invoice_key(code, number)

    assert refused.value.field == field


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2025, 10, 21, 7, 28, tzinfo=UTC)

    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Tue, 21 Oct 2025 07:28:30 GMT", now=now) == 30.0
    assert parse_retry_after("Tue, 21 Oct 2025 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# --- Writes ----------------------------------------------------------------------------------


def test_new_invoice_is_success_created(registry_client, simulator, make_invoice):
    invoice = make_invoice()

    result = registry_client.put_invoice(invoice)

    assert result.outcome is Outcome.SUCCESS and result.ok
    assert (result.status_code, result.created, result.error_kind) == (201, True, None)
    assert result.key == invoice_key(invoice["code"], invoice["number"])
    assert result.registry_id.startswith("BJR")
    assert result.registered_at.tzinfo is not None
    assert abs(datetime.now(UTC) - result.registered_at) < timedelta(minutes=1)
    assert_safe_for_customers(result, simulator)


def test_sending_the_same_invoice_again_is_success_not_created(registry_client, make_invoice):
    invoice = make_invoice(digital=True)
    first = registry_client.put_invoice(invoice)

    again = registry_client.put_invoice({**invoice, "amount": "100", "tax": "6.0"})

    assert again.ok
    assert (again.status_code, again.created) == (200, False)
    assert (again.registry_id, again.registered_at) == (first.registry_id, first.registered_at)


def test_different_fields_are_a_permanent_conflict_with_the_registry_record(
    registry_client, simulator, make_invoice
):
    invoice = make_invoice()
    registry_client.put_invoice(invoice)

    result = registry_client.put_invoice({**invoice, "buyer_name": "另一家公司"})

    assert result.outcome is Outcome.PERMANENT and result.permanent
    assert (result.status_code, result.error_kind) == (409, "conflict")
    assert result.detail["buyer_name"] == invoice["buyer_name"]
    assert_safe_for_customers(result, simulator)


def test_invalid_invoice_is_permanent_with_the_registry_reasons(
    registry_client, simulator, make_invoice
):
    result = registry_client.put_invoice(make_invoice(total="999.00"))

    assert result.outcome is Outcome.PERMANENT
    assert (result.status_code, result.error_kind) == (422, "invalid")
    assert "amount + tax" in result.detail["total"]
    assert "amount + tax" in result.message
    assert_safe_for_customers(result, simulator)


def test_invoice_without_a_valid_key_is_refused_without_asking_the_registry(
    registry_client, simulator, make_invoice
):
    result = registry_client.put_invoice(make_invoice(number="123"))

    assert result.outcome is Outcome.PERMANENT
    assert (result.status_code, result.error_kind) == (None, "invalid")
    assert result.key == "011001900111-123"
    assert "number" in result.detail
    assert simulator.state.stats()["requests"] == {}


def test_decimal_and_date_values_travel_as_protocol_strings(registry_client, make_invoice):
    invoice = make_invoice(
        issue_date=date(2025, 5, 1),
        amount=Decimal("100"),
        tax=Decimal("6.0"),
        total=Decimal("1.06E+2"),
    )

    result = registry_client.put_invoice(invoice)

    assert result.created
    record = registry_client.get_invoice(result.key)
    assert (record["issue_date"], record["amount"], record["total"]) == (
        "2025-05-01",
        "100.00",
        "106.00",
    )


def test_float_money_is_a_programming_error(registry_client, make_invoice):
    with pytest.raises(TypeError):
        registry_client.put_invoice(make_invoice(amount=100.0))


# --- Reads -----------------------------------------------------------------------------------


def test_get_invoice_returns_the_record_or_none(registry_client, make_invoice):
    result = registry_client.put_invoice(make_invoice())

    record = registry_client.get_invoice(result.key)

    assert record["registry_id"] == result.registry_id
    assert registry_client.get_invoice("011001900111-99999999") is None


def test_listing_walks_every_record_once(registry_client, make_invoice):
    invoices = [make_invoice() for _ in range(25)]
    registry_client.put_batch(invoices)

    first_page, cursor = registry_client.list_invoices(limit=10)
    everything = list(registry_client.iter_invoices(page_size=10))

    assert len(first_page) == 10 and cursor is not None
    assert [record["key"] for record in everything] == [
        invoice_key(invoice["code"], invoice["number"]) for invoice in invoices
    ]


def test_health_reflects_an_outage(registry_client, simulator):
    assert registry_client.health() is True

    simulator.state.set_faults({"outage": True})

    assert registry_client.health() is False


def test_reads_raise_a_transient_error_when_the_registry_cannot_answer(registry_client, simulator):
    simulator.state.set_faults({"outage": True})

    with pytest.raises(RegistryError) as failure:
        registry_client.get_invoice("011001900111-00000001")
    with pytest.raises(RegistryError):
        registry_client.list_invoices()

    assert failure.value.transient
    assert (failure.value.status_code, failure.value.error_kind) == (503, "http_503")


# --- Batches ---------------------------------------------------------------------------------


def test_batch_gives_one_classified_result_per_invoice_in_order(registry_client, make_invoice):
    existing, conflicting = make_invoice(), make_invoice()
    registry_client.put_invoice(existing)
    registry_client.put_invoice(conflicting)
    batch = [
        make_invoice(),
        existing,
        {**conflicting, "amount": "99.00", "total": "105.00"},
        make_invoice(tax="7.00"),
        make_invoice(code="123"),  # refused locally, never sent
    ]

    results = registry_client.put_batch(batch)

    assert [(result.outcome, result.status_code, result.error_kind) for result in results] == [
        (Outcome.SUCCESS, 201, None),
        (Outcome.SUCCESS, 200, None),
        (Outcome.PERMANENT, 409, "conflict"),
        (Outcome.PERMANENT, 422, "invalid"),
        (Outcome.PERMANENT, None, "invalid"),
    ]
    assert [result.key for result in results[:4]] == [
        invoice_key(invoice["code"], invoice["number"]) for invoice in batch[:4]
    ]
    assert results[0].created and not results[1].created
    assert results[2].detail["amount"] == "100.00"


def test_batch_larger_than_the_protocol_limit_is_sent_in_parts(
    registry_client, simulator, make_invoice
):
    results = registry_client.put_batch([make_invoice() for _ in range(150)])

    assert all(result.created for result in results)
    assert len(results) == 150
    assert simulator.state.stats()["requests"] == {"batch": 2}


def test_failed_batch_request_is_transient_for_every_invoice(
    registry_client, simulator, make_invoice
):
    simulator.state.set_faults({"error_rate": 1})
    invoices = [make_invoice() for _ in range(3)]

    results = registry_client.put_batch(invoices)

    assert [result.key for result in results] == [
        invoice_key(invoice["code"], invoice["number"]) for invoice in invoices
    ]
    assert all(result.transient and result.status_code in (500, 503) for result in results)
    assert simulator.state.stats()["records"] == 0


# --- Failures --------------------------------------------------------------------------------


def test_server_error_is_transient(registry_client, simulator, make_invoice):
    simulator.state.set_faults({"error_rate": 1})

    result = registry_client.put_invoice(make_invoice())

    assert result.outcome is Outcome.TRANSIENT and result.transient
    assert result.error_kind in ("http_500", "http_503")
    assert_safe_for_customers(result, simulator)


def test_outage_is_transient(registry_client, simulator, make_invoice):
    simulator.state.set_faults({"outage": True})

    result = registry_client.put_invoice(make_invoice())

    assert (result.outcome, result.status_code, result.error_kind) == (
        Outcome.TRANSIENT,
        503,
        "http_503",
    )


def test_rate_limit_is_transient_with_the_registry_retry_after(
    registry_client, simulator, make_invoice
):
    simulator.state.set_faults({"rate_limit": 1})
    assert registry_client.put_invoice(make_invoice()).ok

    limited = registry_client.put_invoice(make_invoice())

    assert (limited.outcome, limited.status_code, limited.error_kind) == (
        Outcome.TRANSIENT,
        429,
        "rate_limited",
    )
    assert limited.retry_after == 1.0
    assert_safe_for_customers(limited, simulator)
    time.sleep(limited.retry_after)
    assert registry_client.put_invoice(make_invoice()).ok


def test_rejection_is_permanent(registry_client, simulator, make_invoice):
    simulator.state.set_faults({"reject_rate": 1})

    result = registry_client.put_invoice(make_invoice())

    assert (result.outcome, result.status_code, result.error_kind) == (
        Outcome.PERMANENT,
        422,
        "rejected",
    )
    assert result.detail == {"invoice": "rejected by simulator"}


def test_registry_that_does_not_answer_in_time_is_a_transient_timeout(simulator, make_invoice):
    # The registry would answer (504) after 5 s; the client gives up at its 0.2 s read timeout:
    # no status code at all, and the error is the client's own "timeout" (no clock read).
    simulator.state.set_faults({"timeout_rate": 1, "timeout_seconds": 5})

    with RegistryClient(simulator.url, read_timeout=0.2) as impatient:
        result = impatient.put_invoice(make_invoice())

    assert (result.outcome, result.status_code, result.error_kind) == (
        Outcome.TRANSIENT,
        None,
        "timeout",
    )
    assert_safe_for_customers(result, simulator)
    assert simulator.state.stats()["records"] == 0


def test_retry_after_a_timeout_that_stored_the_invoice_is_a_success(simulator, make_invoice):
    simulator.state.set_faults({"timeout_after_store_rate": 1, "timeout_seconds": 0.5})
    invoice = make_invoice()

    with RegistryClient(simulator.url, read_timeout=0.2) as impatient:
        timed_out = impatient.put_invoice(invoice)
        simulator.state.set_faults({"timeout_after_store_rate": 0})
        retried = impatient.put_invoice(invoice)

    assert timed_out.error_kind == "timeout"
    assert retried.ok and not retried.created
    assert simulator.state.stats()["records"] == 1


def test_unreachable_registry_is_a_transient_connection_failure(make_invoice):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with RegistryClient(f"http://127.0.0.1:{port}", connect_timeout=0.5) as unreachable:
        result = unreachable.put_invoice(make_invoice())
        healthy = unreachable.health()

    assert (result.outcome, result.status_code, result.error_kind) == (
        Outcome.TRANSIENT,
        None,
        "connection",
    )
    assert "127.0.0.1" not in result.message and str(port) not in result.message
    assert healthy is False


# --- Connections -----------------------------------------------------------------------------


def test_requests_reuse_one_connection(registry_client, simulator, make_invoice):
    for _ in range(5):
        registry_client.put_invoice(make_invoice())
    registry_client.put_batch([make_invoice(), make_invoice()])
    registry_client.list_invoices()

    stats = simulator.state.stats()
    assert sum(stats["requests"].values()) == 7
    assert stats["connections"] == 1


def test_concurrent_deliveries_share_a_bounded_pool(
    registry_client, simulator, make_invoice, latency_watch
):
    latency = latency_watch(0.1)
    invoices = [make_invoice() for _ in range(128)]

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(registry_client.put_invoice, invoices))

    assert all(result.created for result in results)
    assert latency.count == 128 and latency.peak >= 8  # side by side, not one after another
    assert simulator.state.stats()["connections"] <= 32
