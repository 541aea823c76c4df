"""Reporting a missing invoice and following the case."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Case, CaseState
from portal.services import cases, sla
from tests.conftest import AuthActions, csrf_token_from
from tests.factories import report


def test_reporting_opens_a_case_with_a_reference_and_a_promise(app, auth, client):
    auth.register()
    response = report(client)
    assert response.status_code == 302
    reference = response.headers["Location"].rsplit("/", 1)[-1]
    assert re.fullmatch(r"BJ-\d{4}-\d{6}", reference)
    page = client.get(f"/cases/{reference}").get_data(as_text=True)
    assert reference in page and "我们将在" in page and "已收到报告" in page
    assert "开票方说已经开了" in page
    with app.app_context():
        case = db.session.scalar(select(Case))
        assert case.channel == "web" and case.state == CaseState.AWAITING_REVIEW
        assert case.claimed_key == "011001900111-12345678"
        assert case.first_response_due_at < case.resolution_due_at
        assert (
            db.session.scalar(select(AuditEvent.action).where(AuditEvent.action == "case.opened"))
            == "case.opened"
        )


def test_references_count_up_within_a_year(ctx):
    first, second = cases.next_reference(2026), cases.next_reference(2026)
    assert (first, second) == ("BJ-2026-000001", "BJ-2026-000002")
    assert cases.next_reference(2027) == "BJ-2027-000001"


def test_the_report_form_is_prefilled_from_the_lookup(auth, client):
    auth.register()
    html = client.get(
        "/cases/new?code=011001900111&number=12345678&issue_date=2026-05-01&check_code_last6=123456"
    ).get_data(as_text=True)
    assert 'value="12345678"' in html and 'value="2026-05-01"' in html and 'value="123456"' in html


def test_bad_report_fields_are_refused_beside_them(app, auth, client):
    auth.register()
    response = report(client, number="123", buyer_tax_id="91320621MA1MRHG207")
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Case)) is None


def test_phone_contact_needs_a_number(auth, client):
    auth.register()
    response = report(client, contact_preference="phone", contact_phone="")
    assert response.status_code == 422 and "请填写电话号码" in response.get_data(as_text=True)


def test_reporting_needs_an_account(client):
    response = client.get("/cases/new?number=12345678")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_messages_and_withdrawing(app, auth, client):
    auth.register()
    reference = report(client).headers["Location"].rsplit("/", 1)[-1]
    page = client.get(f"/cases/{reference}").get_data(as_text=True)
    token = csrf_token_from(page)
    client.post(
        f"/cases/{reference}/messages", data={"csrf_token": token, "body": "补充：金额无误"}
    )
    assert "补充：金额无误" in client.get(f"/cases/{reference}").get_data(as_text=True)
    empty = client.post(
        f"/cases/{reference}/messages",
        data={"csrf_token": token, "body": " "},
        follow_redirects=True,
    )
    assert "请先填写留言内容" in empty.get_data(as_text=True)
    client.post(f"/cases/{reference}/withdraw", data={"csrf_token": token, "reason": "已找到"})
    with app.app_context():
        assert db.session.scalar(select(Case.state)) == CaseState.WITHDRAWN
    closed = client.post(
        f"/cases/{reference}/messages",
        data={"csrf_token": token, "body": "x"},
        follow_redirects=True,
    )
    assert "该报告已结束" in closed.get_data(as_text=True)


def test_a_reply_to_a_request_for_information_returns_the_case_to_review(ctx):
    from portal.services import accounts

    customer = accounts.register_customer("c@example.com", "Gao-Shan-Liu-Shui-42")
    case = cases.open_case(
        cases.parse_claim({"number": "12345678", "code": "011001900111"}), customer=customer
    )
    case.state = CaseState.INFO_REQUESTED
    db.session.commit()
    cases.add_message(case, customer, "这是发票照片的说明")
    assert case.state == CaseState.AWAITING_REVIEW
    assert [e.kind for e in case.events][-2:] == ["message", "info_added"]


def test_sla_promise_uses_business_hours(ctx):
    friday_evening = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 17:00 in Beijing
    assert sla.first_response_due(friday_evening).astimezone(UTC) == datetime(
        2026, 11, 30, 4, 0, tzinfo=UTC
    )  # Monday 12:00 Beijing
    national_day_eve = datetime(2026, 9, 30, 9, 0, tzinfo=UTC)  # Wed 17:00 Beijing
    due = sla.first_response_due(national_day_eve)
    assert due.astimezone(UTC) == datetime(2026, 10, 8, 4, 0, tzinfo=UTC)  # Thu 8 Oct 12:00


def test_the_case_list_shows_only_my_cases(app, client):
    mine, theirs = AuthActions(client), AuthActions(app.test_client())
    theirs.register("other@example.com")
    other_ref = report(theirs.client).headers["Location"].rsplit("/", 1)[-1]
    mine.register("me@example.com")
    my_ref = report(client).headers["Location"].rsplit("/", 1)[-1]
    listing = client.get("/cases").get_data(as_text=True)
    assert my_ref in listing and other_ref not in listing


def test_waiting_on_the_customer_pauses_the_sla_clock(ctx):
    from portal.services import accounts

    customer = accounts.register_customer("c@example.com", "Gao-Shan-Liu-Shui-42")
    case = cases.open_case(
        cases.parse_claim({"number": "12345678", "code": "011001900111"}), customer=customer
    )
    due = case.resolution_due_at
    # Paused Monday 30 November 10:00 to 14:00 Beijing time: four working hours.
    case.state = CaseState.INFO_REQUESTED
    case.sla_paused_at = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    sla.resume(case, datetime(2026, 11, 30, 6, 0, tzinfo=UTC))
    assert case.sla_paused_at is None
    from datetime import timedelta

    from portal.domain.sla import business_time_between

    assert business_time_between(due, case.resolution_due_at, sla.calendar()) == timedelta(hours=4)


def test_counter_and_urgent_cases_get_shorter_promises(ctx):
    from portal.models import User
    from portal.services import accounts, review

    staff = accounts.create_user("r@example.com", "Gao-Shan-Liu-Shui-42", "reviewer")
    claim = cases.parse_claim({"number": "12345678", "code": "011001900111"})
    web = cases.open_case(claim, customer=None)
    counter = cases.open_case(claim, customer=None, channel="counter")
    assert counter.resolution_due_at < web.resolution_due_at
    review.set_priority(web, staff, "urgent")
    assert web.priority == "urgent" and web.resolution_due_at == sla.resolution_due(
        web.created_at, "web", "urgent"
    )
    assert db.session.scalar(select(User.email)) == "r@example.com"
