"""Staff review: queue, claiming, decisions, four eyes, the offline channel, registry pages."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Case, CaseState, Invoice, RegistryState, Upload, User, utcnow
from portal.services import accounts, cases, review
from portal.services.errors import ServiceError
from tests import factories
from tests.conftest import AuthActions, csrf_token_from
from tests.factories import run_workers

PASSWORD = "Gao-Shan-Liu-Shui-42"


def user(email, role="reviewer") -> User:
    return accounts.create_user(email, PASSWORD, role)


def open_case(key_number="12345678", customer=None, **claim) -> Case:
    values = {"code": "011001900111", "number": key_number} | claim
    return cases.open_case(cases.parse_claim(values), customer=customer)


APPROVED_FIELDS = {
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


def test_queue_puts_breached_first_then_at_risk(ctx):
    me = user("r@example.com")
    calm, risky, late = open_case("00000001"), open_case("00000002"), open_case("00000003")
    now = utcnow()
    late.resolution_due_at = now - timedelta(hours=1)
    risky.resolution_due_at = now + timedelta(hours=1)
    calm.resolution_due_at = now + timedelta(days=2)
    db.session.commit()
    ordered = review.queue(review.QueueFilter(), me)
    assert [c.id for c in ordered] == [late.id, risky.id, calm.id]
    assert [review.sla_status(c, now) for c in ordered] == ["breached", "at_risk", "on_time"]
    mine = review.queue(review.QueueFilter(assignee="me"), me)
    assert mine == []


def test_two_reviewers_claiming_at_once_exactly_one_wins(app):
    with app.app_context():
        ids = [user("a@example.com").id, user("b@example.com").id]
        case_id = open_case().id
    barrier = threading.Barrier(2)
    outcomes = []

    def attempt(reviewer_id):
        with app.app_context():
            case = db.session.get(Case, case_id)
            reviewer = db.session.get(User, reviewer_id)
            barrier.wait()
            try:
                review.claim(case, reviewer)
                outcomes.append("won")
            except ServiceError:
                outcomes.append("lost")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "won"]
    with app.app_context():
        assert db.session.get(Case, case_id).assignee_id in ids


def test_a_claimed_case_is_read_only_to_others(ctx):
    a, b = user("a@example.com"), user("b@example.com")
    case = open_case()
    review.claim(case, a)
    with pytest.raises(ServiceError):
        review.reject(case, b, "other")
    with pytest.raises(ServiceError):
        review.release(case, b)
    review.release(case, a)
    assert case.state == CaseState.AWAITING_REVIEW and case.assignee_id is None


def test_approve_re_enters_and_the_registry_resolves_the_case(delivery_app, registry_sim):
    reviewer = user("r@example.com")
    customer = accounts.register_customer("c@example.com", PASSWORD)
    case = open_case(customer=customer)
    review.claim(case, reviewer)
    review.approve(case, reviewer, APPROVED_FIELDS)
    assert case.state == CaseState.APPROVED
    invoice = db.session.scalar(select(Invoice))
    assert invoice.source == "reentry" and invoice.submissions[0].reason == "reentry"
    run_workers()
    case = db.session.get(Case, case.id)
    assert case.state == CaseState.RESOLVED
    assert registry_sim.state.stats()["records"] == 1
    assert [e.kind for e in cases.public_events(case)][-2:] == ["approved", "registered"]


def test_approve_refuses_invalid_fields(ctx):
    from portal.services.intake import IntakeErrors

    reviewer = user("r@example.com")
    case = open_case()
    review.claim(case, reviewer)
    with pytest.raises(IntakeErrors) as refused:
        review.approve(case, reviewer, APPROVED_FIELDS | {"total": "999.00"})
    assert "total" in refused.value.errors
    assert case.state == CaseState.IN_REVIEW and db.session.scalar(select(Invoice)) is None


def test_approving_a_known_invoice_with_other_fields_corrects_it_after_four_eyes(ctx):
    reviewer, boss = user("r@example.com"), user("s@example.com", "supervisor")
    factories.issued(number="12345678", buyer_name="打错的名字")
    case = open_case()
    review.claim(case, reviewer)
    decision = review.approve(case, reviewer, APPROVED_FIELDS)
    assert decision.awaiting_second and decision.second_reasons == ["ledger_change"]
    assert db.session.scalar(select(Invoice.buyer_name)) == "打错的名字"  # not yet
    review.confirm(case, boss, decision.id, review.decision_digest(decision))
    invoice = db.session.scalar(select(Invoice))
    assert invoice.buyer_name == "北京示例科技有限公司"
    # The original submission is still queued, so no second one was added.
    assert len(invoice.submissions) == 1


def test_four_eyes_above_the_limit(app, app_factory):
    app = app_factory(FOUR_EYES_AMOUNT="1000.00")
    with app.app_context():
        reviewer, boss, other_boss = (
            user("r@example.com"),
            user("s1@example.com", "supervisor"),
            user("s2@example.com", "supervisor"),
        )
        big = APPROVED_FIELDS | {"amount": "5000.00", "tax": "300.00", "total": "5300.00"}
        case = open_case()
        review.claim(case, reviewer)
        decision = review.approve(case, reviewer, big)
        assert decision.awaiting_second and case.state == CaseState.IN_REVIEW
        assert decision.second_reasons == ["amount"]
        assert db.session.scalar(select(Invoice)) is None
        digest = review.decision_digest(decision)
        with pytest.raises(ServiceError):
            review.confirm(case, reviewer, decision.id, digest)  # not a supervisor
        case2 = open_case("22222222")
        review.claim(case2, boss)
        own = review.approve(case2, boss, big | {"number": "22222222"})
        with pytest.raises(ServiceError) as same:
            review.confirm(case2, boss, own.id, review.decision_digest(own))  # the same person
        assert same.value.code == "same_person"
        review.confirm(case, other_boss, decision.id, digest)
        assert case.state == CaseState.APPROVED
        assert db.session.scalar(select(Invoice.total)) == Decimal("5300.00")


def test_reject_and_request_info_reach_the_customer(app, client):
    customer = AuthActions(client)
    customer.register("c@example.com")
    with app.app_context():
        reviewer = user("r@example.com")
        c = db.session.scalar(select(User).where(User.email == "c@example.com"))
        case = open_case(customer=c)
        review.claim(case, reviewer)
        review.request_info(case, reviewer, "请上传发票照片")
        ref = case.reference
    page = client.get(f"/cases/{ref}").get_data(as_text=True)
    assert "请上传发票照片" in page and "等待您补充信息" in page
    client.post(
        f"/cases/{ref}/messages", data={"csrf_token": csrf_token_from(page), "body": "已补充"}
    )
    with app.app_context():
        case = db.session.scalar(select(Case))
        # Back with the reviewer who asked, the SLA clock running again.
        assert case.state == CaseState.IN_REVIEW and case.sla_paused_at is None
        reviewer = db.session.scalar(select(User).where(User.email == "r@example.com"))
        review.reject(case, reviewer, "not_our_invoice", "开票方不是本公司")
    page = client.get(f"/cases/{ref}").get_data(as_text=True)
    assert "未通过" in page and "开票方不是本公司" in page


def test_duplicates_of_every_kind(ctx):
    reviewer = user("r@example.com")
    (registered,) = factories.issued(number="12345678")
    registered.registry_state = RegistryState.REGISTERED
    first, second = open_case(), open_case()
    other = open_case("87654321")
    for case in (second, other):
        db.session.add(
            Upload(
                case_id=case.id,
                original_name="a.jpg",
                storage_key=f"k{case.id}",
                media_type="image/jpeg",
                size_bytes=10,
                sha256="ab" * 32,
            )
        )
    db.session.commit()
    kinds = {d.kind for d in review.duplicates(second)}
    assert kinds == {"registered", "open_case", "same_evidence"}
    review.claim(first, reviewer)
    review.close_registered(first, reviewer)
    assert first.state == CaseState.RESOLVED
    review.claim(second, reviewer)
    with pytest.raises(ServiceError):
        review.merge(second, reviewer, other.reference)  # another invoice
    third = open_case()
    review.merge(second, reviewer, third.reference)
    assert second.state == CaseState.MERGED and second.merged_into_id == third.id


def test_least_loaded_auto_assignment(ctx):
    boss = user("s@example.com", "supervisor")
    busy, _idle = user("busy@example.com"), user("idle@example.com")
    review.claim(open_case("00000001"), busy)
    waiting = [open_case("00000002"), open_case("00000003")]
    assert review.auto_assign(waiting, boss) == 2
    assignees = sorted(c.assignee.email for c in waiting)
    # idle gets the first; then everyone (boss, busy, idle) has one and the earliest wins.
    assert "idle@example.com" in assignees


STAFF_ROUTES = [
    "/staff/",
    "/staff/cases/new",
    "/staff/dead-letters",
    "/staff/search?q=x",
    "/staff/buyer-links",
]


@pytest.mark.parametrize("role", ["customer", "reviewer", "supervisor", "admin"])
def test_permission_matrix(app, make_user, role):
    make_user(f"{role}@example.com", role)
    with app.app_context():
        ref = open_case().reference
        factories.issued(number="55555555")
    actions = AuthActions(app.test_client())
    actions.login(f"{role}@example.com")
    client = actions.client
    expected = 403 if role == "customer" else 200
    for url in [*STAFF_ROUTES, f"/staff/cases/{ref}", "/staff/invoices/011001900111-55555555"]:
        assert client.get(url).status_code == expected, url
    assert client.get("/staff/users").status_code == (200 if role == "admin" else 403)
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    claim = client.post(f"/staff/cases/{ref}/claim", data={"csrf_token": token})
    assert claim.status_code == (403 if role == "customer" else 302)


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in [*STAFF_ROUTES, "/staff/users"]:
        response = client.get(url)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_review_page_flow_through_the_browser_forms(app, make_user):
    make_user("r@example.com", "reviewer")
    with app.app_context():
        ref = open_case().reference
    staff = AuthActions(app.test_client())
    staff.login("r@example.com")
    client = staff.client
    page = client.get(f"/staff/cases/{ref}").get_data(as_text=True)
    assert "认领" in page and "只读" in page
    client.post(f"/staff/cases/{ref}/claim", data={"csrf_token": csrf_token_from(page)})
    page = client.get(f"/staff/cases/{ref}").get_data(as_text=True)
    assert "批准补录" in page and 'value="12345678"' in page
    response = client.post(
        f"/staff/cases/{ref}/approve",
        data={"csrf_token": csrf_token_from(page), **APPROVED_FIELDS},
        follow_redirects=True,
    )
    assert "已批准" in response.get_data(as_text=True)


def test_offline_report_reaches_the_customer_account(app, make_user, client):
    AuthActions(client).register("walkin@example.com")
    make_user("r@example.com", "reviewer")
    staff = AuthActions(app.test_client())
    staff.login("r@example.com")
    page = staff.client.get("/staff/cases/new").get_data(as_text=True)
    response = staff.client.post(
        "/staff/cases/new",
        data={
            "csrf_token": csrf_token_from(page),
            "channel": "counter",
            "contact_email": "walkin@example.com",
            "code": "011001900111",
            "number": "12345678",
            "issue_date": "2026-05-01",
            "description": "柜台报告",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        case = db.session.scalar(select(Case))
        assert case.channel == "counter" and case.state == CaseState.AWAITING_REVIEW
    assert case.reference in client.get("/cases").get_data(as_text=True)


def test_dead_letter_page_retries(sim_app, registry_sim, make_user):
    registry_sim.state.set_faults({"reject_rate": 1.0})
    with sim_app.app_context():
        factories.issued()
        run_workers()
    registry_sim.state.set_faults({"reject_rate": 0.0})
    make_user("r@example.com", "reviewer")
    staff = AuthActions(sim_app.test_client())
    staff.login("r@example.com")
    page = staff.client.get("/staff/dead-letters").get_data(as_text=True)
    assert "rejected" in page
    staff.client.post("/staff/dead-letters", data={"csrf_token": csrf_token_from(page), "all": "1"})
    with sim_app.app_context():
        run_workers()
        assert db.session.scalar(select(Invoice.registry_state)) == RegistryState.REGISTERED


def test_search_finds_cases_invoices_and_people(ctx):
    user("zhang@example.com")
    case = open_case()
    factories.issued(number="12345678")
    from portal.services import search

    assert search.everything(case.reference).cases == [case]
    found = search.everything("12345678")
    assert found.invoices and found.cases
    assert search.everything("911101017967003199").invoices
    assert search.everything("zhang@").users
    assert search.everything("北京示例").invoices
    assert search.everything("nothing-like-this").empty


def test_disabling_a_user_ends_their_sessions(app, make_user):
    make_user("admin@example.com", "admin")
    make_user("r@example.com", "reviewer")
    reviewer = AuthActions(app.test_client())
    reviewer.login("r@example.com")
    assert reviewer.client.get("/staff/").status_code == 200
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        target = db.session.scalar(select(User).where(User.email == "r@example.com"))
        accounts.update_user(admin, target, "reviewer", active=False)
        with pytest.raises(ServiceError):
            accounts.update_user(admin, admin, "admin", active=False)
    response = reviewer.client.get("/staff/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
