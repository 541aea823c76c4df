"""Buyer links (request → staff approval, or staff invitation → acceptance) and "my invoices"."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from portal.extensions import db
from portal.models import BuyerLink, LinkState
from tests import factories
from tests.conftest import AuthActions, csrf_token_from

MY_BUYER = "911101017967003199"
OTHER_BUYER = "91440106068698695J"


def seed_invoices(app):
    with app.app_context():
        for n in range(30):
            factories.invoice(
                buyer_tax_id=MY_BUYER,
                issue_date=date(2026, 5, 1 + n % 28),
                total=Decimal(100 + n),
                number=f"5{n:07d}",
            )
        factories.invoice(buyer_tax_id=OTHER_BUYER, number="99999999", buyer_name="别家")
        db.session.commit()


def request_link(client, tax_id=MY_BUYER):
    token = csrf_token_from(client.get("/buyers").get_data(as_text=True))
    return client.post(
        "/buyers",
        data={
            "csrf_token": token,
            "buyer_tax_id": tax_id,
            "buyer_name": "北京示例科技有限公司",
            "note": "财务",
        },
    )


def staff_client(app, make_user):
    make_user("shenhe@example.com", "reviewer")
    staff = AuthActions(app.test_client())
    staff.login("shenhe@example.com")
    return staff.client


def test_request_approved_by_staff_shows_my_invoices(app, auth, client, make_user):
    seed_invoices(app)
    auth.register()
    assert request_link(client).status_code == 302
    assert "尚未关联任何购买方" in client.get("/invoices").get_data(as_text=True)

    staff = staff_client(app, make_user)
    page = staff.get("/staff/buyer-links").get_data(as_text=True)
    assert "kehu@example.com" in page
    link_id = re.search(r'name="link_id" value="(\d+)"', page).group(1)
    staff.post(
        "/staff/buyer-links/decide",
        data={"csrf_token": csrf_token_from(page), "link_id": link_id, "decision": "approve"},
    )
    with app.app_context():
        assert db.session.scalar(select(BuyerLink.state)) == LinkState.APPROVED

    html = client.get("/invoices").get_data(as_text=True)
    assert "共 30 张发票" in html and "99999999" not in html
    assert "第 1 页，共 2 页" in html


def test_invalid_tax_id_is_refused(auth, client):
    auth.register()
    response = request_link(client, tax_id="91320621MA1MRHG207")
    assert response.status_code == 422 and 'aria-invalid="true"' in response.get_data(as_text=True)


def test_invitation_is_accepted_once_by_the_invited_email(app, auth, client, make_user):
    seed_invoices(app)
    staff = staff_client(app, make_user)
    page = staff.get("/staff/buyer-links").get_data(as_text=True)
    created = staff.post(
        "/staff/buyer-links",
        data={
            "csrf_token": csrf_token_from(page),
            "email": "kehu@example.com",
            "buyer_tax_id": MY_BUYER,
            "buyer_name": "北京示例科技有限公司",
        },
    ).get_data(as_text=True)
    url = re.search(r"http://127.0.0.1:8000(/buyers/invitations/[\w-]+)", created).group(1)

    intruder = AuthActions(app.test_client())
    intruder.register("intruder@example.com")
    page = intruder.client.get(url).get_data(as_text=True)
    refused = intruder.client.post(
        url, data={"csrf_token": csrf_token_from(page)}, follow_redirects=True
    )
    assert "该邀请发给了其他电子邮箱" in refused.get_data(as_text=True)

    auth.register("kehu@example.com")
    page = client.get(url).get_data(as_text=True)
    client.post(url, data={"csrf_token": csrf_token_from(page)})
    assert "共 30 张发票" in client.get("/invoices").get_data(as_text=True)
    assert client.get(url).status_code == 404  # single use


def approve_directly(app, email="kehu@example.com", tax_id=MY_BUYER):
    from portal.models import User

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        db.session.add(BuyerLink(user_id=user.id, buyer_tax_id=tax_id, state=LinkState.APPROVED))
        db.session.commit()


def test_filters_search_and_pagination(app, auth, client):
    seed_invoices(app)
    auth.register()
    approve_directly(app)
    html = client.get("/invoices?date_from=2026-05-01&date_to=2026-05-02").get_data(as_text=True)
    assert "共 4 张发票" in html  # days 1 and 2, each twice (n and n+28)
    assert "共 1 张发票" in client.get("/invoices?number=50000007").get_data(as_text=True)
    assert "共 2 张发票" in client.get("/invoices?amount_min=128").get_data(as_text=True)
    assert "共 0 张发票" in client.get("/invoices?state=registered").get_data(as_text=True)
    bad = client.get("/invoices?amount_min=abc")
    assert bad.status_code == 200 and 'aria-invalid="true"' in bad.get_data(as_text=True)
    page2 = client.get("/invoices?page=2").get_data(as_text=True)
    assert "第 2 页，共 2 页" in page2


def test_csv_export_contains_only_my_filtered_invoices(app, auth, client):
    seed_invoices(app)
    auth.register()
    approve_directly(app)
    response = client.get("/invoices.csv?amount_min=120")
    assert response.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "key" and len(rows) == 1 + 10
    assert all(r[8] == MY_BUYER for r in rows[1:])


def test_csv_export_defuses_formulas(app, auth, client):
    with app.app_context():
        factories.invoice(buyer_tax_id=MY_BUYER, buyer_name='=HYPERLINK("http://x")')
        db.session.commit()
    auth.register()
    approve_directly(app)
    body = client.get("/invoices.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in body


def test_invoice_detail_needs_the_link(app, auth, client):
    seed_invoices(app)
    auth.register()
    approve_directly(app)
    mine = client.get("/invoices/011001900111-50000001")
    assert mine.status_code == 200 and "进度" in mine.get_data(as_text=True)
    assert client.get("/invoices/011001900111-99999999").status_code == 404
