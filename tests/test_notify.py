"""Notifications: rows first, sent by the worker into the mail folder; rating links."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.mail import FolderBackend
from portal.models import Notification, Rating, User
from portal.services import accounts, cases, review
from tests.conftest import AuthActions, csrf_token_from
from tests.factories import run_workers

FIELDS = {
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


@pytest.fixture
def mail_app(app_factory, registry_sim, tmp_path, app):
    return app_factory(
        MAIL_URL=f"file://{tmp_path / 'mail'}",
        REGISTRY_URL=registry_sim.url,
        REGISTRY_RATE_LIMIT=0,
        PUBLIC_URL="http://portal.test",
    )


def mails(app, tmp_path):
    return FolderBackend(tmp_path / "mail").list_messages()


def test_a_report_is_acknowledged_by_mail_with_its_reference(mail_app, tmp_path):
    with mail_app.app_context():
        # An account made by the CLI: no "confirm your address" mail beside the one tested.
        customer = accounts.create_user("c@example.com", "Gao-Shan-Liu-Shui-42", "customer")
        case = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=customer
        )
        row = db.session.scalar(select(Notification))
        assert row.kind == "case_opened" and row.state == "pending"
        run_workers()
        assert db.session.scalar(select(Notification.state)) == "sent"
        (sent,) = mails(mail_app, tmp_path)
        message = FolderBackend(tmp_path / "mail").read_message(sent.name)
        assert case.reference in message.subject
        assert f"http://portal.test/cases/{case.reference}" in message.text


def test_english_customers_get_english_mail(mail_app, tmp_path):
    with mail_app.app_context():
        customer = accounts.create_user("en@example.com", "Gao-Shan-Liu-Shui-42", "customer")
        accounts.set_locale(customer, "en")
        cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=customer
        )
        run_workers()
        (sent,) = mails(mail_app, tmp_path)
        assert re.search(r"[A-Za-z]{4}", sent.subject) and "报告" not in sent.subject


def test_resolution_mail_carries_a_single_use_rating_link(mail_app, tmp_path):
    with mail_app.app_context():
        reviewer = accounts.create_user("r@example.com", "Gao-Shan-Liu-Shui-42", "reviewer")
        customer = accounts.register_customer("c@example.com", "Gao-Shan-Liu-Shui-42")
        case = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=customer
        )
        review.claim(case, reviewer)
        review.approve(case, reviewer, FIELDS)
        run_workers()  # registers the invoice, resolves the case, sends the mails
        kinds = set(db.session.scalars(select(Notification.kind)))
        assert {"case_opened", "case_approved", "case_resolved"} <= kinds
        resolved = next(
            m
            for m in mails(mail_app, tmp_path)
            if "rate" in (FolderBackend(tmp_path / "mail").read_message(m.name).text or "")
        )
        text = FolderBackend(tmp_path / "mail").read_message(resolved.name).text
    link = re.search(r"http://portal\.test(/rate/[^\s?]+)\?score=5", text).group(1)
    client = mail_app.test_client()
    page = client.get(link + "?score=5")
    assert page.status_code == 200
    with mail_app.app_context():
        assert db.session.scalar(select(Rating)) is None  # a GET records nothing
    token = csrf_token_from(page.get_data(as_text=True))
    assert (
        client.post(link, data={"csrf_token": token, "score": "5", "comment": "很快"}).status_code
        == 200
    )
    again = client.post(link, data={"csrf_token": token, "score": "1"})
    assert again.status_code == 409
    tampered = client.post(link[:-3] + "xyz", data={"csrf_token": token, "score": "1"})
    assert tampered.status_code == 400
    with mail_app.app_context():
        rating = db.session.scalar(select(Rating))
        assert rating.score == 5 and rating.comment == "很快"


def test_optional_mail_can_be_switched_off(mail_app):
    from portal.services import notify

    with mail_app.app_context():
        user = accounts.register_customer("c@example.com", "Gao-Shan-Liu-Shui-42")
        user.optional_mail = False
        db.session.commit()
        assert notify.queue("case_approved", user.email, user=user, context={}) is None
        assert (
            notify.queue(
                "case_rejected",
                user.email,
                user=user,
                context={
                    "reference": "BJ-2026-000001",
                    "case_url": "http://portal.test/x",
                    "reason": "x",
                },
            )
            is not None
        )


def test_staff_can_read_the_mail_folder(mail_app, tmp_path):
    with mail_app.app_context():
        customer = accounts.register_customer("c@example.com", "Gao-Shan-Liu-Shui-42")
        cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=customer
        )
        run_workers()
        accounts.create_user("r@example.com", "Gao-Shan-Liu-Shui-42", "reviewer")
    staff = AuthActions(mail_app.test_client())
    staff.login("r@example.com")
    listing = staff.client.get("/staff/mail").get_data(as_text=True)
    name = re.search(r'href="/staff/mail/([^"]+)"', listing).group(1)
    assert "BJ-" in staff.client.get(f"/staff/mail/{name}").get_data(as_text=True)
    assert staff.client.get("/staff/mail/..%2F..%2Fetc%2Fpasswd").status_code == 404
    with mail_app.app_context():
        assert db.session.scalar(select(User.email).where(User.role == "reviewer"))
