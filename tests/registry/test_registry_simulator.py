"""The registry simulator over real HTTP: the protocol, validation, listing, batches, faults,
statistics and storage, as the portal and the acceptance checks see them."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.domain.fields import WIRE_FIELDS
from portal.registry import SimulatorServer, invoice_key
from portal.registry.simulator import BEIJING, validate_invoice


class SimulatorHttp:
    """Plain HTTP against one simulator: paths instead of URLs, a timeout on every call."""

    def __init__(self, base_url, session):
        self.base_url = base_url
        self.session = session

    def get(self, path, **kwargs):
        return self.session.get(self.base_url + path, timeout=10, **kwargs)

    def put(self, path, **kwargs):
        return self.session.put(self.base_url + path, timeout=10, **kwargs)

    def post(self, path, **kwargs):
        return self.session.post(self.base_url + path, timeout=10, **kwargs)

    def put_invoice(self, invoice, key=None):
        key = key or invoice_key(invoice["code"], invoice["number"])
        return self.put(f"/v1/invoices/{key}", json=invoice)

    def batch(self, invoices):
        return self.post("/v1/invoices:batch", json={"invoices": invoices})

    def stats(self):
        return self.get("/_sim/stats").json()

    def set_faults(self, **faults):
        response = self.put("/_sim/faults", json=faults)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def http(simulator):
    """Plain HTTP against the fresh simulator."""
    with requests.Session() as session:
        yield SimulatorHttp(simulator.url, session)


def key_of(invoice):
    return invoice_key(invoice["code"], invoice["number"])


# --- PUT and GET -----------------------------------------------------------------------------


def test_new_invoice_is_created_with_registry_id_and_utc_time(http, make_invoice):
    invoice = make_invoice(amount="6.2", tax="0.8", total="7")

    response = http.put_invoice(invoice)

    assert response.status_code == 201
    record = response.json()
    assert record["key"] == key_of(invoice)
    assert record["registry_id"].startswith("BJR")
    registered_at = datetime.fromisoformat(record["registered_at"])
    assert registered_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - registered_at) < timedelta(minutes=1)
    # Money is stored and returned in canonical form.
    assert (record["amount"], record["tax"], record["total"]) == ("6.20", "0.80", "7.00")


def test_same_fields_again_answer_200_with_the_original_record(http, make_invoice):
    invoice = make_invoice(amount="6.2", tax="0.8", total="7")
    first = http.put_invoice(invoice).json()

    again = http.put_invoice({**invoice, "amount": "6.20", "tax": "0.80", "total": "7.00"})

    assert again.status_code == 200
    assert again.json() == first


def test_different_fields_answer_409_and_leave_the_stored_record(http, make_invoice):
    invoice = make_invoice()
    stored = http.put_invoice(invoice).json()

    conflict = http.put_invoice({**invoice, "amount": "90.00", "tax": "16.00"})

    assert conflict.status_code == 409
    assert conflict.json()["record"] == stored
    assert conflict.json()["differences"] == ["amount", "tax"]
    assert http.get(f"/v1/invoices/{stored['key']}").json() == stored


def test_get_answers_the_record_or_404(http, make_invoice):
    created = http.put_invoice(make_invoice()).json()

    found = http.get(f"/v1/invoices/{created['key']}")
    missing = http.get("/v1/invoices/011001900111-99999999")

    assert found.status_code == 200
    assert found.json() == created
    assert missing.status_code == 404


def test_digital_invoice_is_keyed_by_its_20_digit_number(http, make_invoice):
    invoice = make_invoice(digital=True)

    response = http.put_invoice(invoice, key=invoice["number"])

    assert response.status_code == 201
    assert response.json()["key"] == invoice["number"]
    assert response.json()["code"] == ""


def test_key_in_the_url_must_match_the_body(http, make_invoice):
    response = http.put_invoice(make_invoice(), key="011001900111-00000000")

    assert response.status_code == 422
    assert "does not match" in response.json()["errors"]["key"]


def test_body_that_is_not_a_json_object_answers_400(http):
    response = http.put(
        "/v1/invoices/011001900111-00000001",
        data="not json",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400


TOMORROW_IN_BEIJING = (datetime.now(BEIJING).date() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"code": "12345"}, "code", "10 or 12 digits"),
        ({"number": "1234567"}, "number", "8 digits"),
        ({"number": "１２３４５６７８"}, "number", "8 digits"),  # full-width digits
        ({"code": "", "check_code": ""}, "number", "20 digits"),
        ({"kind": ""}, "kind", "required"),
        ({"issue_date": "2025-02-30"}, "issue_date", "calendar date"),
        ({"issue_date": "20250101"}, "issue_date", "YYYY-MM-DD"),
        ({"issue_date": TOMORROW_IN_BEIJING}, "issue_date", "future"),
        ({"amount": "100.001", "total": "106.001"}, "amount", "2 decimal places"),
        ({"tax": "-6.00", "total": "94.00"}, "tax", "negative"),
        ({"amount": "1e2"}, "amount", "decimal number"),
        ({"amount": 100}, "amount", "must be a string"),
        ({"total": "106.01"}, "total", "amount + tax"),
        ({"buyer_name": "  "}, "buyer_name", "required"),
        ({"seller_tax_id": "not-an-id"}, "seller_tax_id", "15 to 20"),
        ({"check_code": "123"}, "check_code", "20 digits"),
    ],
)
def test_invalid_invoice_answers_422_with_the_reason(http, make_invoice, overrides, field, reason):
    response = http.put_invoice(make_invoice(**overrides), key="011001900111-00000001")

    assert response.status_code == 422
    assert reason in response.json()["errors"][field]
    assert http.stats()["records"] == 0


def test_every_missing_required_field_is_reported(http):
    response = http.put_invoice({"code": "011001900111", "number": "00000001"})

    assert response.status_code == 422
    errors = response.json()["errors"]
    required = {"kind", "issue_date", "amount", "tax", "total", "buyer_name", "seller_tax_id"}
    assert errors == dict.fromkeys(required, "is required")


@settings(max_examples=60, deadline=None)
@given(amount_cents=st.integers(0, 10**14), tax_cents=st.integers(0, 10**12))
def test_amount_plus_tax_must_equal_total_to_the_fen(amount_cents, tax_cents):
    def money(cents):
        return str(Decimal(cents) / 100)

    invoice = {
        "code": "011001900111",
        "number": "00000001",
        "kind": "10",
        "issue_date": "2025-05-01",
        "buyer_name": "张三",
        "seller_tax_id": "911101017967003199",
        "amount": money(amount_cents),
        "tax": money(tax_cents),
    }

    _, canonical, errors = validate_invoice({**invoice, "total": money(amount_cents + tax_cents)})
    _, _, one_fen_off = validate_invoice({**invoice, "total": money(amount_cents + tax_cents + 1)})

    assert errors == {}
    assert Decimal(canonical["amount"]) + Decimal(canonical["tax"]) == Decimal(canonical["total"])
    assert set(one_fen_off) == {"total"}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
invoice_like_bodies = st.dictionaries(
    st.sampled_from([*WIRE_FIELDS, "registry_id"]),
    json_values | st.from_regex(r"[0-9]{0,21}(\.[0-9]{0,3})?", fullmatch=True),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=invoice_like_bodies)
def test_any_json_body_gets_a_protocol_answer_never_a_server_error(simulator_server, body):
    with requests.Session() as session:
        url = simulator_server.url
        single = session.put(f"{url}/v1/invoices/011001900111-00000001", json=body, timeout=10)
        batch = session.post(
            f"{url}/v1/invoices:batch", json={"invoices": [body, "not an object"]}, timeout=10
        )

    assert single.status_code in (200, 201, 409, 422)
    assert batch.status_code == 200
    assert batch.json()["results"][1]["status"] == 422


# --- Listing ---------------------------------------------------------------------------------


def register_many(http, make_invoice, count):
    keys = []
    for start in range(0, count, 100):
        response = http.batch([make_invoice() for _ in range(min(100, count - start))])
        results = response.json()["results"]
        assert {item["status"] for item in results} == {201}
        keys += [item["key"] for item in results]
    return keys


def test_listing_pages_cover_every_record_once_in_registration_order(http, make_invoice):
    keys = register_many(http, make_invoice, 250)
    listed, cursor, pages = [], None, 0
    while True:
        params = {"limit": 100} if cursor is None else {"limit": 100, "since": cursor}
        page = http.get("/v1/invoices", params=params).json()
        pages += 1
        listed += [record["key"] for record in page["invoices"]]
        if pages == 1:  # registered mid-listing: must still show up, on a later page
            keys += register_many(http, make_invoice, 1)
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert listed == keys
    assert pages == 3


def test_listing_limit_defaults_to_100_and_is_capped_at_1000(http, make_invoice):
    register_many(http, make_invoice, 1001)

    default = http.get("/v1/invoices").json()
    capped = http.get("/v1/invoices", params={"limit": 5000}).json()
    rest = http.get("/v1/invoices", params={"since": capped["next_cursor"]}).json()

    assert len(default["invoices"]) == 100
    assert default["next_cursor"] is not None
    assert len(capped["invoices"]) == 1000
    assert len(rest["invoices"]) == 1
    assert rest["next_cursor"] is None


def test_empty_listing_has_no_next_cursor(http):
    assert http.get("/v1/invoices").json() == {"invoices": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params", [{"since": "abc"}, {"limit": "0"}, {"limit": "-5"}, {"limit": "many"}]
)
def test_listing_refuses_bad_parameters(http, params):
    response = http.get("/v1/invoices", params=params)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == set(params)


# --- Batch -----------------------------------------------------------------------------------


def test_batch_answers_each_item_on_its_own_in_order(http, make_invoice):
    existing, conflicting = make_invoice(), make_invoice()
    http.put_invoice(existing)
    http.put_invoice(conflicting)
    new, invalid = make_invoice(), make_invoice(total="1.00")

    response = http.batch([new, existing, {**conflicting, "buyer_name": "别人"}, invalid, 42])

    assert response.status_code == 200
    results = response.json()["results"]
    assert [item["status"] for item in results] == [201, 200, 409, 422, 422]
    expected_keys = [key_of(invoice) for invoice in (new, existing, conflicting, invalid)]
    assert [item["key"] for item in results] == [*expected_keys, None]
    assert results[0]["registry_id"].startswith("BJR")
    assert results[2]["record"]["buyer_name"] == conflicting["buyer_name"]
    assert "total" in results[3]["errors"]
    stats = http.stats()
    assert stats["records"] == 3
    assert stats["batch_items"] == {"created": 1, "same": 1, "conflict": 1, "invalid": 2}


def test_batch_of_more_than_100_is_refused_whole(http, make_invoice):
    response = http.batch([make_invoice() for _ in range(101)])

    assert response.status_code == 422
    assert "at most 100" in response.json()["errors"]["invoices"]
    assert http.stats()["records"] == 0


def test_batch_body_without_an_invoice_list_answers_400(http):
    assert http.post("/v1/invoices:batch", json={"items": []}).status_code == 400


# --- Faults ----------------------------------------------------------------------------------


def test_faults_start_off_and_settings_merge(http):
    assert http.get("/_sim/faults").json() == {
        "error_rate": 0.0,
        "timeout_rate": 0.0,
        "timeout_after_store_rate": 0.0,
        "reject_rate": 0.0,
        "latency_ms": 0.0,
        "outage": False,
        "rate_limit": None,
        "timeout_seconds": None,
        "seed": None,
    }

    http.set_faults(error_rate=0.25)
    merged = http.set_faults(latency_ms=5)

    assert (merged["error_rate"], merged["latency_ms"]) == (0.25, 5)


def test_bad_fault_settings_are_refused_with_reasons_and_change_nothing(http):
    bad = {
        "error_rate": 1.5,
        "outage": "yes",
        "latency_ms": -1,
        "rate_limit": "fast",
        "seed": 1.5,
        "timeout_rate": True,
        "timeout_seconds": 0,
        "chaos": 1,
    }

    response = http.put("/_sim/faults", json=bad)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == set(bad)
    assert http.get("/_sim/faults").json()["error_rate"] == 0.0


def test_error_rate_answers_5xx_and_stores_nothing(http, make_invoice):
    http.set_faults(error_rate=1)

    statuses = {http.put_invoice(make_invoice()).status_code for _ in range(10)}

    assert statuses <= {500, 503}
    stats = http.stats()
    assert stats["records"] == 0
    assert stats["requests"] == {"error": 10}


def test_outage_answers_503_everywhere_but_the_operator_endpoints(http, make_invoice):
    http.set_faults(outage=True)
    invoice = make_invoice()

    assert http.put_invoice(invoice).status_code == 503
    assert http.get("/v1/invoices").status_code == 503
    assert http.batch([invoice]).status_code == 503
    assert http.get("/healthz").status_code == 503
    assert http.stats()["requests"] == {"outage": 3}

    http.set_faults(outage=False)
    assert http.get("/healthz").json() == {"ok": True}
    assert http.put_invoice(invoice).status_code == 201


def test_rate_limit_answers_429_with_retry_after(http, make_invoice):
    http.set_faults(rate_limit=2)

    responses = [http.put_invoice(make_invoice()) for _ in range(4)]

    assert [response.status_code for response in responses] == [201, 201, 429, 429]
    assert responses[2].headers["Retry-After"] == "1"
    assert http.stats()["records"] == 2


def test_latency_delays_protocol_requests_only(http, make_invoice, latency_watch):
    latency = latency_watch(0.15)

    http.put_invoice(make_invoice())
    assert latency.count == 1  # one injected sleep of the latency (counted, not timed)
    http.get("/healthz")
    assert latency.count == 1  # no sleep for the health check


def test_reject_rate_refuses_valid_invoices_with_422(http, make_invoice):
    http.set_faults(reject_rate=1)

    response = http.put_invoice(make_invoice())

    assert response.status_code == 422
    assert response.json()["errors"] == {"invoice": "rejected by simulator"}
    assert http.stats()["records"] == 0


def test_timeout_hangs_then_answers_504_without_storing(http, make_invoice):
    http.set_faults(timeout_rate=1, timeout_seconds=0.3)

    started = time.perf_counter()
    response = http.put_invoice(make_invoice())

    assert response.status_code == 504
    assert time.perf_counter() - started >= 0.3
    assert http.stats()["records"] == 0


def test_timeout_after_store_keeps_the_record(http, make_invoice):
    http.set_faults(timeout_after_store_rate=1, timeout_seconds=0.1)
    invoice = make_invoice()

    assert http.put_invoice(invoice).status_code == 504

    http.set_faults(timeout_after_store_rate=0)
    assert http.put_invoice(invoice).status_code == 200


def test_the_same_seed_draws_the_same_faults(http, make_invoice):
    def draw_statuses():
        http.set_faults(error_rate=0.5, seed=42)
        return [http.put_invoice(make_invoice()).status_code for _ in range(20)]

    first, second = draw_statuses(), draw_statuses()

    assert first == second
    assert 201 in first
    assert set(first) - {201}


# --- Statistics, reset, storage, load --------------------------------------------------------


def test_stats_count_requests_by_outcome_duplicates_and_conflicts(http, make_invoice):
    invoice = make_invoice()
    http.put_invoice(invoice)
    http.put_invoice(invoice)
    http.put_invoice(invoice)
    http.put_invoice({**invoice, "buyer_name": "别人"})
    http.put_invoice(make_invoice(total="0.00"))
    http.get(f"/v1/invoices/{key_of(invoice)}")
    http.get("/v1/invoices/011001900111-99999999")
    http.get("/v1/invoices")
    http.batch([invoice])

    stats = http.stats()

    assert stats["requests"] == {
        "created": 1,
        "same": 2,
        "conflict": 1,
        "invalid": 1,
        "found": 1,
        "not_found": 1,
        "listed": 1,
        "batch": 1,
    }
    assert stats["records"] == 1
    assert stats["duplicates"] == 3  # two repeated PUTs and one batch item
    assert stats["conflicts"] == 1


def test_reset_clears_records_stats_and_faults(http, make_invoice):
    http.put_invoice(make_invoice())
    http.set_faults(latency_ms=1)

    assert http.post("/_sim/reset").status_code == 200

    stats = http.stats()
    assert (stats["records"], stats["requests"], stats["duplicates"]) == (0, {}, 0)
    assert http.get("/_sim/faults").json()["latency_ms"] == 0


def test_storage_file_keeps_records_across_restarts(tmp_path, make_invoice):
    storage = str(tmp_path / "registry.sqlite3")
    earlier, later = make_invoice(), make_invoice()

    with SimulatorServer(storage) as first, requests.Session() as session:
        created = SimulatorHttp(first.url, session).put_invoice(earlier).json()

    with SimulatorServer(storage) as second, requests.Session() as session:
        http = SimulatorHttp(second.url, session)
        found = http.get(f"/v1/invoices/{key_of(earlier)}").json()
        again = http.put_invoice(earlier)
        added = http.put_invoice(later).json()
        listed = http.get("/v1/invoices").json()["invoices"]

    assert found == created
    assert again.status_code == 200
    assert added["registry_id"] != created["registry_id"]
    assert [record["key"] for record in listed] == [key_of(earlier), key_of(later)]


def test_serves_many_concurrent_slow_requests(simulator, make_invoice, latency_watch):
    latency = latency_watch(0.2)
    invoices = [make_invoice() for _ in range(100)]

    def register(invoice):
        # A connection per request on purpose: bursts of new connections must be served too.
        return requests.put(
            f"{simulator.url}/v1/invoices/{key_of(invoice)}", json=invoice, timeout=10
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = [response.status_code for response in pool.map(register, invoices)]

    assert statuses == [201] * 100
    assert latency.count == 100 and latency.peak >= 10  # side by side, not one after another
    assert simulator.state.stats()["records"] == 100


def test_kept_connection_survives_answers_that_never_read_the_body(http, make_invoice):
    invoice = make_invoice()
    http.set_faults(outage=True)
    refused = http.put_invoice(invoice)  # answered before the body is parsed
    http.set_faults(outage=False)

    created = http.put_invoice(invoice)

    assert (refused.status_code, created.status_code) == (503, 201)
    assert http.stats()["connections"] == 1
