"""Two-step sign-in: required for admins, optional for other staff."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select

from portal.extensions import db
from portal.models import User
from portal.support import crypto
from tests.conftest import AuthActions, csrf_token_from


def post(client, url, **data):
    page = client.get(url)
    return client.post(
        url, data={"csrf_token": csrf_token_from(page.get_data(as_text=True)), **data}
    )


def password_step(actions, email):
    return actions.post_form("/auth/login", {"email": email, "password": "Gao-Shan-Liu-Shui-42"})


def test_an_admin_must_set_up_a_code_at_first_sign_in(app):
    from portal.services import accounts

    with app.app_context():
        accounts.create_user("admin@example.com", "Gao-Shan-Liu-Shui-42", "admin")
    actions = AuthActions(app.test_client())
    response = password_step(actions, "admin@example.com")
    assert response.headers["Location"].endswith("/auth/2fa")
    client = actions.client
    assert client.get("/auth/2fa").headers["Location"].endswith("/auth/2fa/setup")
    page = client.get("/auth/2fa/setup").get_data(as_text=True)
    assert "<svg" in page
    secret = re.search(r'class="mono break"[^>]*>([A-Z2-7]{16,})<', page).group(1)
    # Not signed in yet: staff pages still send to sign-in.
    assert client.get("/staff/users").status_code == 302
    wrong = post(client, "/auth/2fa/setup", code="000000")
    assert "不正确" in wrong.get_data(as_text=True)
    post(client, "/auth/2fa/setup", code=pyotp.TOTP(secret).now())
    assert client.get("/staff/users").status_code == 200
    with app.app_context():
        stored = db.session.scalar(select(User.totp_secret))
        assert secret not in stored and crypto.decrypt_secret(stored) == secret  # at rest


def test_a_code_is_asked_at_every_sign_in_once_set_up(app, make_user):
    make_user("r@example.com", "reviewer")
    secret = pyotp.random_base32()
    with app.app_context():
        db.session.scalar(select(User)).totp_secret = crypto.encrypt_secret(secret)
        db.session.commit()
    actions = AuthActions(app.test_client())
    assert password_step(actions, "r@example.com").headers["Location"].endswith("/auth/2fa")
    client = actions.client
    assert client.get("/staff/").status_code == 302  # the password alone is not enough
    bad = post(client, "/auth/2fa", code="123456")
    assert bad.status_code == 200 and "不正确" in bad.get_data(as_text=True)
    good = post(client, "/auth/2fa", code=pyotp.TOTP(secret).now())
    assert good.status_code == 302
    assert client.get("/staff/").status_code == 200


def test_reviewers_without_a_code_sign_in_with_the_password(app, make_user):
    make_user("r@example.com", "reviewer")
    actions = AuthActions(app.test_client())
    assert actions.login("r@example.com").headers["Location"] == "/staff/"
    assert "两步登录" in actions.client.get("/").get_data(as_text=True)


def test_the_second_step_cannot_be_reached_without_the_password(client):
    response = client.get("/auth/2fa")
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")
    assert client.get("/auth/2fa/setup").status_code == 302
