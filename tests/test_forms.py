"""The portal's forms and CSRF tokens: made by portal.forms, checked by Flask-WTF."""

from __future__ import annotations

import inspect
import zlib

import pytest
from flask import session
from flask_wtf import FlaskForm
from flask_wtf.csrf import validate_csrf
from itsdangerous import URLSafeTimedSerializer
from markupsafe import Markup
from wtforms import ValidationError, widgets
from wtforms.meta import DefaultMeta

import portal.auth.forms
import portal.customer.forms
import portal.staff.forms
from portal.web import forms
from portal.web.sessions import COMPRESS_MIN, CompactSerializer


def test_every_form_takes_its_token_from_the_portal():
    found = [
        form
        for module in (portal.auth.forms, portal.customer.forms, portal.staff.forms)
        for _, form in inspect.getmembers(module, inspect.isclass)
        if issubclass(form, FlaskForm) and form.__module__ == module.__name__
    ]
    assert len(found) > 20
    assert all(issubclass(form, forms.PortalForm) for form in found)


def test_flask_wtf_accepts_our_tokens_for_their_own_session_only(app):
    with app.test_request_context("/"):
        token = forms.generate_csrf()
        assert forms.generate_csrf() == token  # one token per request
        validate_csrf(token)  # Flask-WTF's check; raises if refused
        session["csrf_token"] = forms.new_raw_token()  # another visitor's session
        with pytest.raises(ValidationError, match="do not match"):
            validate_csrf(token)


def test_a_form_and_the_template_global_share_the_request_token(app):
    with app.test_request_context("/"):
        form = portal.customer.forms.LookupForm()
        assert form.csrf_token.current_token == forms.generate_csrf()
        assert app.jinja_env.globals["csrf_token"] is forms.generate_csrf
        rendered = app.jinja_env.from_string("{{ csrf_token() }}").render()
        assert rendered == form.csrf_token.current_token


def test_a_session_holding_something_else_gets_a_new_raw_token(app):
    with app.test_request_context("/"):
        session["csrf_token"] = 12345  # not a string: unusable, as Flask-WTF would find
        token = forms.generate_csrf()
        assert isinstance(session["csrf_token"], str)
        validate_csrf(token)


def test_flask_wtf_context_processor_is_not_run_on_every_render(app):
    names = [f.__qualname__ for f in app.template_context_processors[None]]
    assert not any("CSRFProtect" in name for name in names)


def test_the_csrf_hook_checks_posts_and_leaves_exempt_views_alone(app, client):
    assert client.post("/lookup", data={"number": "12345678"}).status_code == 400  # no token
    # The API is exempt (it takes a bearer token): no CSRF refusal, its own 401.
    assert client.post("/api/v1/lookup", json={}).status_code == 401


@pytest.mark.parametrize(
    "value",
    ["a" * 40, {"csrf_token": "b" * 40, "_fresh": False}, "x" * (COMPRESS_MIN + 100)],
    ids=["token", "first session", "long and repetitive"],
)
def test_compact_serializer_output_is_itsdangerous_output(value):
    ours = CompactSerializer("secret", salt="salt")
    theirs = URLSafeTimedSerializer("secret", salt="salt")
    signed = ours.dumps(value)
    assert theirs.loads(signed) == value
    assert ours.loads(theirs.dumps(value)) == value
    payload = signed.split(".")[0]
    long = len(str(value)) >= COMPRESS_MIN
    assert (payload == "") is long  # itsdangerous marks a compressed payload with a leading "."
    if long:
        assert len(signed) < len(str(value))  # and it is compressed when that pays


def test_short_payloads_are_not_compressed(monkeypatch):
    calls = []
    monkeypatch.setattr(zlib, "compress", lambda data, *a: calls.append(data) or data)
    CompactSerializer("secret", salt="salt").dumps({"csrf_token": "c" * 40})
    assert calls == []


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"name": "number", "id": "number", "type": "text", "value": "12345678"},
        {"class_": "input", "for_": "x", "data_lookup_field": "amount", "aria_invalid": "false"},
        {"required": True, "disabled": False, "checked": True, "maxlength": 8, "step": 0.01},
        {"value": 'a "quoted" <b>&amp; tag</b>', "title": "It's"},
        {"value": Markup('<i>"kept"</i> & such'), "placeholder": None},
        {"aria_describedby": "code-help code-error", "inputmode": "numeric", "value": ""},
        {"onclick": "alert('x')", "data_x": "\\u2028"},
    ],
)
def test_quick_html_params_matches_wtforms(attributes):
    ours, theirs = forms.html_params(**attributes), widgets.html_params(**attributes)
    assert ours == theirs
    assert isinstance(ours, Markup)


def test_every_form_renders_as_wtforms_renders_it(app):
    """Each field of each portal form, rendered through PortalForm (quick attributes) and through
    WTForms' own widgets, with the attributes our templates pass."""
    form_classes = [
        form
        for module in (portal.auth.forms, portal.customer.forms, portal.staff.forms)
        for _, form in inspect.getmembers(module, inspect.isclass)
        if issubclass(form, forms.PortalForm) and form.__module__ == module.__name__
    ]
    rendered = quick = 0
    with app.test_request_context("/"):
        for form_class in form_classes:
            form = form_class(formdata=None)
            for field in form:
                kw = {"class_": "input", "aria_invalid": "false", "aria_describedby": False}
                widget = field.widget
                theirs = str(DefaultMeta().render_field(field, kw))  # before ours swaps it
                ours = str(field(**kw))
                assert ours == theirs, (form_class.__name__, field.name)
                if isinstance(widget, widgets.Input):
                    assert field.widget is not widget  # rendered by the quick copy
                    quick += 1
                rendered += 1
    assert rendered > 60 and quick > 40
