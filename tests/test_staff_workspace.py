"""The staff workspace (issue 20): decisions as validated forms with errors beside the fields,
the queue filter form, what a 数电票 is asked, and the registry column from stored state
(issue 19 item 2: the review page never calls the registry)."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.extensions import db
from portal.models import Case, RegistrySnapshot
from portal.services import accounts, cases, registry_view, review
from portal.staff import presenters
from tests import factories
from tests.conftest import AuthActions, csrf_token_from
from tests.factories import run_workers

PASSWORD = "Gao-Shan-Liu-Shui-42"
APPROVAL = {
    "code": "011001900111",
    "number": "12345678",
    "kind": "",
    "issue_date": "2026-05-01",
    "amount": "100.00",
    "tax": "6.00",
    "total": "106.00",
    "check_code": "65431824771847114698",
    "buyer_tax_id": "911101017967003199",
    "buyer_name": "北京示例科技有限公司",
    "seller_tax_id": "91320621MA1MRHG205",
}
DIGITAL_NUMBER = "26112000000000000011"  # a Beijing 数电票 number (11 at digits 3-4)


def _claimed_case(app, email="r@example.com", **claim) -> tuple[object, str]:
    with app.app_context():
        reviewer = accounts.create_user(email, PASSWORD, "reviewer")
        values = {"code": "011001900111", "number": "12345678"} | claim
        case = cases.open_case(cases.parse_claim(values), customer=None)
        review.claim(case, reviewer)
        ref = case.reference
    staff = AuthActions(app.test_client())
    staff.login(email)
    return staff.client, ref


def _page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def _error_of(page: str, field: str) -> str:
    match = re.search(rf'<p class="error" id="{field}-error"[^>]*>([^<]*)</p>', page)
    return match[1] if match else ""


def test_a_refused_approval_shows_each_error_beside_its_field_and_keeps_the_input(app):
    client, ref = _claimed_case(app)
    page = _page(client, f"/staff/cases/{ref}")
    typed = {**APPROVAL, "amount": "一百块", "buyer_tax_id": "12345", "buyer_name": "某某公司"}
    response = client.post(
        f"/staff/cases/{ref}/approve", data={"csrf_token": csrf_token_from(page), **typed}
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert _error_of(page, "amount") and _error_of(page, "buyer_tax_id")
    # In Chinese, beside the field, never a banner naming the raw field.
    assert re.search(r"[\u4e00-\u9fff]", _error_of(page, "amount"))
    assert "amount:" not in page and "buyer_tax_id:" not in page
    assert 'value="一百块"' in page and 'value="某某公司"' in page and 'value="12345"' in page
    with app.app_context():
        assert db.session.scalar(select(Case).where(Case.reference == ref)).state == "in_review"


def test_totals_that_do_not_add_up_are_refused_beside_the_total(app):
    client, ref = _claimed_case(app)
    page = _page(client, f"/staff/cases/{ref}")
    response = client.post(
        f"/staff/cases/{ref}/approve",
        data={"csrf_token": csrf_token_from(page), **APPROVAL, "total": "999.00"},
    )
    assert response.status_code == 422
    assert _error_of(response.get_data(as_text=True), "total")


def test_an_approval_says_what_was_done(app):
    client, ref = _claimed_case(app)
    page = _page(client, f"/staff/cases/{ref}")
    response = client.post(
        f"/staff/cases/{ref}/approve",
        data={"csrf_token": csrf_token_from(page), **APPROVAL},
        follow_redirects=True,
    )
    assert f"已批准补录 {ref}" in response.get_data(as_text=True)


def test_the_kind_is_a_choice_by_chinese_name_and_a_digital_invoice_is_not_asked_a_code(app):
    client, ref = _claimed_case(app, code="", number=DIGITAL_NUMBER)
    page = _page(client, f"/staff/cases/{ref}")
    kind = re.search(r'<select[^>]*name="kind".*?</select>', page, re.S)[0]
    assert "数电票（普通发票）" in kind and "增值税专用发票" in kind
    assert 'name="code"' not in page and 'name="check_code"' not in page
    assert re.search(
        r'<option selected value="digital_ordinary">|value="digital_ordinary" selected', kind
    )


def test_the_form_is_prefilled_from_what_the_customer_confirmed(app):
    with app.app_context():
        case = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=None
        )
        case.confirmed_fields = {"amount": "100.00", "total": "106.00", "buyer_name": "甲公司"}
        db.session.commit()
        values = presenters.prefill_fields(case)
    assert values["amount"] == "100.00" and values["buyer_name"] == "甲公司"
    assert values["tax"] == "6.00"  # total − amount when nobody gave the tax


def test_reject_without_a_reason_is_refused_beside_the_reason(app):
    client, ref = _claimed_case(app)
    page = _page(client, f"/staff/cases/{ref}")
    response = client.post(
        f"/staff/cases/{ref}/reject",
        data={"csrf_token": csrf_token_from(page), "reason_code": "nonsense", "text": "说明文字"},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert _error_of(page, "reason_code") and "说明文字" in page


def test_the_queue_filter_shows_a_bad_amount_beside_its_field(app, make_user):
    make_user("r@example.com", "reviewer")
    staff = AuthActions(app.test_client())
    staff.login("r@example.com")
    page = _page(staff.client, "/staff/?amount_min=abc&older_than_hours=-5")
    assert _error_of(page, "amount_min") and _error_of(page, "older_than_hours")
    assert 'value="abc"' in page


def test_bulk_claim_goes_through_the_service(app, make_user):
    make_user("r@example.com", "reviewer")
    with app.app_context():
        refs = [
            cases.open_case(
                cases.parse_claim({"code": "011001900111", "number": n}), customer=None
            ).reference
            for n in ("00000001", "00000002")
        ]
    staff = AuthActions(app.test_client())
    staff.login("r@example.com")
    page = _page(staff.client, "/staff/")
    response = staff.client.post(
        "/staff/queue/bulk",
        data={"csrf_token": csrf_token_from(page), "action": "claim", "case": refs},
        follow_redirects=True,
    )
    assert "已更新 2 个工单" in response.get_data(as_text=True)
    with app.app_context():
        assert {c.state for c in db.session.scalars(select(Case))} == {"in_review"}


def test_possible_duplicates_leave_out_the_cases_own_invoice(app):
    with app.app_context():
        reviewer = accounts.create_user("r@example.com", PASSWORD, "reviewer")
        case = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=None
        )
        review.claim(case, reviewer)
        review.approve(case, reviewer, APPROVAL)
        assert case.invoice_id is not None
        assert [d for d in review.duplicates(case) if d.kind in ("ledger", "registered")] == []


def test_a_resolved_case_shows_no_empty_claim_card(app, make_user):
    make_user("r@example.com", "reviewer")
    with app.app_context():
        case = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=None
        )
        case.state = "resolved"
        db.session.commit()
        ref = case.reference
    staff = AuthActions(app.test_client())
    staff.login("r@example.com")
    assert 'class="claim-bar' not in _page(staff.client, f"/staff/cases/{ref}")


# ------------------------------------------------------ the registry column (issue 19 item 2)


def test_the_review_page_answers_from_stored_state_while_the_registry_hangs(sim_app, registry_sim):
    with sim_app.app_context():
        invoice = factories.issued(number="12345678")[0]
        run_workers()  # delivered: registered while the registry was well
        db.session.refresh(invoice)
        assert invoice.registry_state == "registered"
    registry_sim.state.set_faults({"timeout_rate": 1})
    before = sum(registry_sim.state.stats()["requests"].values())
    client, ref = _claimed_case(sim_app)
    page = _page(client, f"/staff/cases/{ref}")
    assert sum(registry_sim.state.stats()["requests"].values()) == before  # never asked
    assert "上次提交时登记系统接受的内容" in page
    assert invoice.registry_id in page


def test_a_refresh_is_done_by_a_worker_and_the_page_shows_its_answer(sim_app, registry_sim):
    with sim_app.app_context():
        factories.issued(number="12345678")
        run_workers()
    client, ref = _claimed_case(sim_app)
    page = _page(client, f"/staff/cases/{ref}")
    response = client.post(
        f"/staff/cases/{ref}/registry-refresh",
        data={"csrf_token": csrf_token_from(page)},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "正在查询登记系统" in page and "data-poll=" in page
    assert client.get(f"/staff/cases/{ref}/registry.json").get_json()["refreshing"] is True
    with sim_app.app_context():
        run_workers()  # the refresh job asks the registry and stores its answer
        snapshot = db.session.scalar(select(RegistrySnapshot))
        assert snapshot.found and snapshot.requested_at is None
    assert client.get(f"/staff/cases/{ref}/registry.json").get_json()["refreshing"] is False
    assert "重新查询时登记系统的答复" in _page(client, f"/staff/cases/{ref}")


def test_a_refresh_that_gets_no_answer_keeps_the_stored_record_and_says_why(sim_app, registry_sim):
    with sim_app.app_context():
        factories.issued(number="12345678")
        run_workers()
        registry_sim.state.set_faults({"timeout_rate": 1})
        key = "011001900111-12345678"
        view = registry_view.refresh(key)
        assert view.source == "delivery" and view.error == "timeout"
    client, ref = _claimed_case(sim_app)
    page = _page(client, f"/staff/cases/{ref}")
    assert "上次重新查询没有结果" in page and "登记系统未及时响应" in page


def test_staff_sign_in_lands_on_the_queue_and_customers_on_their_home(app, make_user):
    make_user("r@example.com", "reviewer")
    staff = AuthActions(app.test_client())
    assert staff.login("r@example.com").headers["Location"].endswith("/staff/")
    make_user("c@example.com", "customer")
    customer = AuthActions(app.test_client())
    assert not customer.login("c@example.com").headers["Location"].endswith("/staff/")


def test_dashboard_trends_count_cases_per_day_with_a_table(app, make_user):
    make_user("s@example.com", "supervisor")
    with app.app_context():
        for n in ("00000001", "00000002"):
            cases.open_case(cases.parse_claim({"code": "011001900111", "number": n}), customer=None)
        from portal.services import dashboard

        today = dashboard.trends().cases[-1]
        assert today[1] == 2 and today[2] == 0
    staff = AuthActions(app.test_client())
    staff.login("s@example.com")
    page = _page(staff.client, "/staff/dashboard")
    assert "每日新建与解决的工单（14 天）" in page and "<caption>" in page
    assert page.count('<table class="table trend">') == 4


def test_the_viewer_gets_every_page_of_a_pdf(app):
    import io

    import pypdfium2

    from portal.models import Upload
    from tests.factories import EVIDENCE_SAMPLE as SAMPLE
    from tests.scans.corpus import invoice_pdf

    one = pypdfium2.PdfDocument(invoice_pdf(SAMPLE))
    two = pypdfium2.PdfDocument.new()
    two.import_pages(one, [0])
    two.import_pages(one, [0])
    buffer = io.BytesIO()
    two.save(buffer)
    client, ref = _claimed_case(app, code=SAMPLE.code, number=SAMPLE.number)
    page = _page(client, f"/staff/cases/{ref}")
    client.post(
        f"/staff/cases/{ref}/evidence",
        data={
            "csrf_token": csrf_token_from(page),
            "files": (io.BytesIO(buffer.getvalue()), "两页.pdf"),
        },
        content_type="multipart/form-data",
    )
    with app.app_context():
        run_workers()
        upload = db.session.scalar(select(Upload))
        assert upload.pages == 2
        upload_id = upload.id
    page = _page(client, f"/staff/cases/{ref}")
    assert f"/staff/evidence/{upload_id}/page/2.png" in page and "共 2 页" in page
    second = client.get(f"/staff/evidence/{upload_id}/page/2.png")
    assert second.status_code == 200 and second.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/staff/evidence/{upload_id}/page/3.png").status_code == 404


def test_a_refresh_whose_job_vanished_stops_being_waited_for(app):
    from datetime import timedelta

    from portal.models import utcnow

    with app.app_context():
        db.session.add(
            RegistrySnapshot(
                invoice_key="011001900111-12345678", requested_at=utcnow() - timedelta(hours=1)
            )
        )
        db.session.commit()
        assert not registry_view.for_key("011001900111-12345678").refreshing
