"""Every customer object route × owner / other customer / anonymous, and staff routes × roles."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import BuyerLink, Case, LinkState, User
from portal.services import cases
from tests import factories
from tests.conftest import AuthActions, csrf_token_from

OWNER, OTHER = "owner@example.com", "other@example.com"


@pytest.fixture
def world(app):
    """An owner with a case and a linked buyer's invoice; another customer with neither."""
    owner, other = AuthActions(app.test_client()), AuthActions(app.test_client())
    owner.register(OWNER)
    other.register(OTHER)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == OWNER))
        case = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=user
        )
        invoice = factories.invoice(buyer_tax_id="911101017967003199")
        db.session.add(
            BuyerLink(user_id=user.id, buyer_tax_id="911101017967003199", state=LinkState.APPROVED)
        )
        db.session.commit()
        ref, key = case.reference, invoice.key
    return {
        "owner": owner.client,
        "other": other.client,
        "anonymous": app.test_client(),
        "ref": ref,
        "key": key,
    }


GETS = ["/cases/{ref}", "/invoices/{key}"]
POSTS = ["/cases/{ref}/messages", "/cases/{ref}/withdraw"]


@pytest.mark.parametrize("route", GETS)
def test_object_pages(world, route):
    url = route.format(**world)
    assert world["owner"].get(url).status_code == 200
    assert world["other"].get(url).status_code == 404
    anonymous = world["anonymous"].get(url)
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]


@pytest.mark.parametrize("route", POSTS)
def test_object_actions(app, world, route):
    url = route.format(**world)
    for who in ("other", "anonymous"):
        client = world[who]
        page = "/" if who == "other" else "/auth/login"  # a page with a token form
        token = csrf_token_from(client.get(page).get_data(as_text=True))
        response = client.post(url, data={"csrf_token": token, "body": "hi", "reason": "x"})
        assert response.status_code in (404, 302), who
        if response.status_code == 302:
            assert "/auth/login" in response.headers["Location"]
    with app.app_context():
        case = db.session.scalar(select(Case))
        assert case.state == "awaiting_review" and [e.kind for e in case.events] == ["opened"]


def test_a_missing_case_and_someone_elses_look_the_same(world):
    assert world["other"].get(f"/cases/{world['ref']}").status_code == 404
    assert world["other"].get("/cases/BJ-2026-999999").status_code == 404


def test_lists_and_exports_hold_only_ones_own(world):
    assert world["ref"] not in world["other"].get("/cases").get_data(as_text=True)
    assert world["key"] not in world["other"].get("/invoices").get_data(as_text=True)
    assert world["key"] not in world["other"].get("/invoices.csv").get_data(as_text=True)
    assert world["key"] in world["owner"].get("/invoices.csv").get_data(as_text=True)
    for url in ("/cases", "/invoices", "/invoices.csv", "/buyers", "/cases/new"):
        assert world["anonymous"].get(url).status_code == 302


@pytest.mark.parametrize(
    "role, status", [("customer", 403), ("reviewer", 200), ("supervisor", 200), ("admin", 200)]
)
def test_staff_pages_by_role(app, make_user, role, status):
    make_user(f"{role}@example.com", role)
    actions = AuthActions(app.test_client())
    actions.login(f"{role}@example.com")
    assert actions.client.get("/staff/buyer-links").status_code == status
    token = csrf_token_from(actions.client.get("/").get_data(as_text=True))
    decide = actions.client.post(
        "/staff/buyer-links/decide",
        data={"csrf_token": token, "link_id": "1", "decision": "approve"},
    )
    assert decide.status_code == (403 if role == "customer" else 302)


def test_staff_pages_send_anonymous_visitors_to_sign_in(client):
    response = client.get("/staff/buyer-links")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


# ---- routes added for issue 16: links sent by mail, two-step resets, withdrawing approvals


def test_mailed_link_pages_are_open_to_everyone_but_useless_without_a_valid_token(client):
    assert client.get("/auth/reset").status_code == 200
    for url in ("/auth/reset/not-a-token", "/auth/verify/not-a-token"):
        page = client.get(url)
        assert page.status_code in (200, 400), url
    token = csrf_token_from(client.get("/auth/reset").get_data(as_text=True))
    bogus = client.post("/auth/verify/not-a-token", data={"csrf_token": token})
    assert bogus.status_code == 400


def test_resending_the_verification_needs_a_signed_in_user(client):
    token = csrf_token_from(client.get("/auth/login").get_data(as_text=True))
    answer = client.post("/auth/verify", data={"csrf_token": token})
    assert answer.status_code == 302 and "/auth/login" in answer.headers["Location"]


@pytest.mark.parametrize(
    "role, status", [("customer", 403), ("reviewer", 403), ("supervisor", 403), ("admin", 302)]
)
def test_resetting_someones_two_step_sign_in_is_for_admins_only(app, make_user, role, status):
    from portal.support import crypto

    target = make_user("target@example.com", "reviewer")
    with app.app_context():
        db.session.get(User, target).totp_secret = crypto.encrypt_secret("JBSWY3DPEHPK3PXP")
        db.session.commit()
    make_user(f"{role}@example.com", role)
    actions = AuthActions(app.test_client())
    actions.login(f"{role}@example.com")
    token = csrf_token_from(actions.client.get("/").get_data(as_text=True))
    answer = actions.client.post(f"/staff/users/{target}/totp-reset", data={"csrf_token": token})
    assert answer.status_code == status
    with app.app_context():
        assert (db.session.get(User, target).totp_secret is None) == (role == "admin")
    anonymous = app.test_client().post(f"/staff/users/{target}/totp-reset")
    assert anonymous.status_code in (302, 400)


@pytest.mark.parametrize("role, status", [("customer", 403), ("reviewer", 302)])
def test_withdrawing_an_approval_is_for_staff(app, make_user, role, status):
    make_user(f"{role}@example.com", role)
    with app.app_context():
        ref = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=None
        ).reference
    actions = AuthActions(app.test_client())
    actions.login(f"{role}@example.com")
    token = csrf_token_from(actions.client.get("/").get_data(as_text=True))
    answer = actions.client.post(
        f"/staff/cases/{ref}/withdraw_approval", data={"csrf_token": token}
    )
    assert answer.status_code == status
