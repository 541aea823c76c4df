"""Lookup: every diagnosis path through the real ledger, outbox and simulator."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from portal.domain import shanghai_date
from portal.models import utcnow
from portal.services import accounts
from tests import factories
from tests.factories import look_up, run_workers

CHECK = "65431824771847114698"


def findings(response) -> list[str]:
    return re.findall(r'class="finding finding-([a-z_]+)"', response.get_data(as_text=True))


def e_ordinary(invoice, **override):
    fields = {
        "code": invoice.code,
        "number": invoice.number,
        "issue_date": invoice.issue_date.isoformat(),
        "check_code_last6": CHECK[-6:],
    }
    return fields | override


def test_registered_invoice_shows_registry_id_and_timeline(sim_app, client):
    with sim_app.app_context():
        (invoice,) = factories.issued()
        run_workers()
        fields, registry_id = e_ordinary(invoice), invoice.registry_id
    response = look_up(client, **fields)
    html = response.get_data(as_text=True)
    assert findings(response) == ["registered"]
    assert registry_id in html and "进度" in html and "提交登记系统：已受理" in html


def test_pending_invoice_shows_attempts_next_try_and_registry_health(sim_app, registry_sim, client):
    registry_sim.state.set_faults({"error_rate": 1.0})
    with sim_app.app_context():
        (invoice,) = factories.issued()
        run_workers()
        fields = e_ordinary(invoice)
    response = look_up(client, **fields)
    html = response.get_data(as_text=True)
    assert findings(response) == ["pending_registry"]
    assert "已尝试 1 次" in html and "上次未成功：登记系统暂时不可用" in html and "下次尝试" in html
    assert "登记系统运行正常" in html
    assert "提交登记系统：暂无响应，将自动重试" in html


def test_issued_today_when_we_do_not_have_it_yet(sim_app, client):
    today = shanghai_date(utcnow()).isoformat()
    response = look_up(
        client, code="011001900111", number="77777777", issue_date=today, check_code_last6="123456"
    )
    assert findings(response) == ["issued_today"]


def test_not_a_beijing_invoice_names_the_region(sim_app, client):
    response = look_up(
        client,
        code="031001900111",
        number="12345678",
        issue_date="2026-01-05",
        check_code_last6="123456",
    )
    assert findings(response) == ["not_beijing"]
    assert "上海" in response.get_data(as_text=True)


def test_total_typed_for_the_amount_offers_the_corrected_lookup(sim_app, client):
    with sim_app.app_context():
        factories.issued(
            code="1100261130",
            number="00000042",
            kind="special",
            check_code="",
            amount=Decimal("100.00"),
            tax=Decimal("13.00"),
            total=Decimal("113.00"),
        )
    response = look_up(
        client, code="1100261130", number="00000042", issue_date="2026-05-01", amount="113.00"
    )
    assert findings(response) == ["amount_is_total"]
    html = response.get_data(as_text=True)
    assert "修改后重新查询" in html and "total=113.00" in html


def test_unknown_invoice_offers_a_report_carrying_the_fields(sim_app, client):
    response = look_up(
        client,
        code="011001900111",
        number="12345678",
        issue_date="2026-01-05",
        check_code_last6="123456",
    )
    assert findings(response) == ["unknown"]
    link = re.search(r'href="(/cases/new\?[^"]+)"', response.get_data(as_text=True)).group(1)
    assert "number=12345678" in link and "issue_date=2026-01-05" in link


def test_two_wrong_fields_reveal_nothing(sim_app, client):
    with sim_app.app_context():
        (invoice,) = factories.issued()
        fields = e_ordinary(invoice, issue_date="2025-01-01", check_code_last6="000000")
    assert findings(look_up(client, **fields)) == ["unknown"]


def test_bad_input_is_explained_beside_the_field(sim_app, client):
    response = look_up(client, code="0110019001", number="123", issue_date="2026-01-05")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in html and "发票号码" in html


def test_qr_text_fills_the_form_and_looks_up(sim_app, client):
    response = look_up(
        client, qr_text="01,10,012001900111,51142414,47.26,20190720,65431824771847114698,8BDD,"
    )
    assert findings(response) == ["not_beijing"]
    assert 'value="51142414"' in response.get_data(as_text=True)


def test_n_failed_checks_of_one_invoice_a_day_then_refused(app_factory, registry_sim, client):
    app = app_factory(LOOKUPS_PER_INVOICE_PER_DAY=2, REGISTRY_URL=registry_sim.url)
    client = app.test_client()
    fields = {
        "code": "011001900111",
        "number": "12345678",
        "issue_date": "2026-01-05",
        "check_code_last6": "123456",
    }
    assert findings(look_up(client, **fields)) == ["unknown"]
    assert findings(look_up(client, **fields)) == ["unknown"]
    third = look_up(client, **fields)
    assert findings(third) == [] and "今天已用不一致的信息查验这张发票 2 次" in third.get_data(
        as_text=True
    )


def test_lookups_are_rate_limited_per_ip(app_factory, registry_sim):
    app = app_factory(RATELIMIT_LOOKUP_IP="2 per minute", REGISTRY_URL=registry_sim.url)
    client = app.test_client()
    answers = [
        look_up(
            client,
            number=f"{n:08d}",
            code="011001900111",
            issue_date="2026-01-05",
            check_code_last6="123456",
        )
        for n in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "60"  # the minute window has room by then
    assert "请稍候" in answers[2].get_data(as_text=True)


def test_corrected_mistakes_cost_no_lookups(app_factory, registry_sim):
    app = app_factory(RATELIMIT_LOOKUP_IP="2 per minute", REGISTRY_URL=registry_sim.url)
    client = app.test_client()
    fields = {"code": "011001900111", "issue_date": "2026-01-05", "check_code_last6": "123456"}
    for _ in range(3):  # a number that cannot be an invoice's: refused beside the field
        assert look_up(client, number="1234", **fields).status_code == 422
    answers = [look_up(client, number=f"{n:08d}", **fields) for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert look_up(client, number="1234", **fields).status_code == 429  # checked all the same


def test_fields_needed_for_the_kind(client):
    special = client.get("/lookup/fields?code=1100261130&number=00000042").get_json()
    digital = client.get("/lookup/fields?number=25117000001115703415").get_json()
    ordinary = client.get("/lookup/fields?code=011001900111&number=00000001").get_json()
    assert special["fields"] == ["issue_date", "amount"]
    assert digital["fields"] == ["issue_date", "total"]
    assert ordinary["fields"] == ["issue_date", "check_code_last6"]
    assert client.get("/lookup/fields?code=1&number=2").get_json()["ok"] is False


def test_api_lookup_answers_codes(sim_app, client):
    with sim_app.app_context():
        (invoice,) = factories.issued()
        run_workers()
        fields = e_ordinary(invoice)
        user = accounts.create_user("app@example.com", "Gao-Shan-Liu-Shui-42", "customer")
        token = accounts.issue_api_token(user, "mini-program")
    response = client.post(
        "/api/v1/lookup",
        json=fields,
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
    )
    body = response.get_json()
    assert response.status_code == 200
    assert [f["code"] for f in body["findings"]] == ["registered"]
    assert body["registry"]["state"] == "registered"
    assert "registered" in body["findings"][0]["message"]
    bad = client.post(
        "/api/v1/lookup", json={"number": "1"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["errors"]
    assert client.post("/api/v1/lookup", json=fields).status_code == 401


def test_lookup_result_dates_in_the_past(sim_app, client):
    """A lookup of yesterday's unknown invoice is `unknown`, not `issued_today`."""
    yesterday = (shanghai_date(utcnow()) - timedelta(days=1)).isoformat()
    response = look_up(
        client,
        code="011001900111",
        number="88888888",
        issue_date=yesterday,
        check_code_last6="123456",
    )
    assert findings(response) == ["unknown"]
    # The report link carries the date as typed, for the report form to prefill.
    assert f"issue_date={yesterday}" in response.get_data(as_text=True)
