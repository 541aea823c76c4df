"""The portal's forms: a form that acts for someone carries Flask-WTF's session token; the
anonymous ones carry none and are guarded by the cross-origin check (portal/web/forms.py)."""

from __future__ import annotations

import inspect

from flask_wtf import FlaskForm

import portal.auth.forms
import portal.customer.forms
import portal.staff.forms
from portal.web.forms import PortalForm, SessionlessForm
from tests.conftest import csrf_token_from

SESSIONLESS = {"LookupForm", "ScanForm"}


def portal_forms() -> list[type]:
    return [
        form
        for module in (portal.auth.forms, portal.customer.forms, portal.staff.forms)
        for _, form in inspect.getmembers(module, inspect.isclass)
        if issubclass(form, FlaskForm) and form.__module__ == module.__name__
    ]


def test_only_the_anonymous_lookup_forms_go_without_a_token():
    found = portal_forms()
    assert len(found) > 20
    sessionless = {form.__name__ for form in found if issubclass(form, SessionlessForm)}
    assert sessionless == SESSIONLESS
    # Every other form is a PortalForm, with the CSRF token on.
    assert all(issubclass(form, PortalForm) for form in found if form.__name__ not in SESSIONLESS)


def test_a_form_that_acts_for_someone_needs_its_own_sessions_token(app):
    visitor, attacker = app.test_client(), app.test_client()
    fields = {"email": "kehu@example.com", "password": "wrong password"}
    assert visitor.post("/auth/login", data=fields).status_code == 400  # no token
    token = csrf_token_from(attacker.get("/auth/login").get_data(as_text=True))
    # The attacker's token, sent in the visitor's session: refused.
    assert visitor.post("/auth/login", data={**fields, "csrf_token": token}).status_code == 400
    # In its own session it gets past the CSRF check (and the password is wrong).
    assert attacker.post("/auth/login", data={**fields, "csrf_token": token}).status_code != 400


def test_the_anonymous_lookup_needs_no_token_and_no_session(client):
    answer = client.post("/lookup", data={"code": "011002600111", "number": "12345678"})
    assert answer.status_code != 400
    assert "Set-Cookie" not in answer.headers or "session=" not in answer.headers["Set-Cookie"]


def test_the_api_is_left_to_its_bearer_token(client):
    assert client.post("/api/v1/lookup", json={}).status_code == 401
    cross_site = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    assert client.post("/api/v1/lookup", json={}, headers=cross_site).status_code == 401
