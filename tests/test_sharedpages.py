"""The signed-out lookup form is rendered once per language and served with each visitor's token;
plain signed-out visits are answered from the kept response, without Flask."""

from __future__ import annotations

import re

import pytest
from flask import flash, redirect, request_started, template_rendered

from portal.ops import metrics
from portal.web.sharedpages import SignedOutPages
from tests.conftest import csrf_token_from

TOKEN_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def renders(app):
    """The templates rendered while the test runs, in order."""
    seen: list[str] = []

    def record(_app, template, context, **_extra):
        seen.append(template.name)

    template_rendered.connect(record, app)
    yield seen
    template_rendered.disconnect(record, app)


@pytest.fixture
def flask_requests(app):
    """How many requests reached Flask (its request_started signal) while the test runs."""
    seen: list[str] = []

    def record(sender, **_extra):
        seen.append("request")

    request_started.connect(record, app)
    yield seen
    request_started.disconnect(record, app)


def without_tokens(html: str) -> str:
    return TOKEN_RE.sub('name="csrf_token" value="…"', html)


def session_cookie(response) -> str | None:
    """The session cookie's value set by ``response``, if any."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("session="):
            return header.split(";", 1)[0].removeprefix("session=")
    return None


LOOKUP_FIELDS = {"code": "011002600111", "number": "12345678", "issue_date": "2026-05-01"}


def csrf_accepted(client, token: str) -> bool:
    """True if a lookup posted by ``client`` with ``token`` gets past the CSRF check (a refused
    token is a 400; the lookup itself may still find fields missing)."""
    return client.post("/lookup", data={"csrf_token": token, **LOOKUP_FIELDS}).status_code != 400


def test_visitors_share_the_page_but_not_the_token(app, renders):
    first, second = app.test_client(), app.test_client()
    page_1 = first.get("/lookup").get_data(as_text=True)
    page_2 = second.get("/lookup").get_data(as_text=True)

    assert renders.count("customer/lookup.html") == 1  # the second visitor got the kept copy
    assert without_tokens(page_1) == without_tokens(page_2)
    token_1, token_2 = csrf_token_from(page_1), csrf_token_from(page_2)
    assert token_1 != token_2
    # Every form on the page carries the visitor's own token, and nothing else is left of the slot.
    assert set(TOKEN_RE.findall(page_2)) == {token_2}
    assert "\x00" not in page_2
    # Each token belongs to its own visitor's session: it works there, and only there.
    fields = {"code": "011002600111", "number": "12345678", "issue_date": "2026-05-01"}
    assert second.post("/lookup", data={"csrf_token": token_2, **fields}).status_code != 400
    assert second.post("/lookup", data={"csrf_token": token_1, **fields}).status_code == 400


def test_the_kept_page_matches_a_fresh_render(app_factory):
    cached = app_factory(SHARED_PAGE_CACHE=True).test_client()
    fresh = app_factory(SHARED_PAGE_CACHE=False).test_client()
    cached.get("/lookup")  # fill the copy
    kept = cached.get("/lookup").get_data(as_text=True)
    rendered = fresh.get("/lookup").get_data(as_text=True)
    assert without_tokens(kept) == without_tokens(rendered)


def test_each_language_has_its_own_copy(app, renders):
    chinese, english = app.test_client(), app.test_client()
    english.set_cookie("lang", "en")
    zh_page = chinese.get("/lookup").get_data(as_text=True)
    en_page = english.get("/lookup").get_data(as_text=True)
    assert "查询发票" in zh_page and 'lang="zh-CN"' in zh_page
    assert "Look up an invoice" in en_page and '<html lang="en">' in en_page
    chinese.get("/lookup"), english.get("/lookup")
    assert renders.count("customer/lookup.html") == 2


def test_signed_in_users_get_their_own_page(app, auth, renders):
    app.test_client().get("/lookup")  # a signed-out visitor fills the copy
    auth.register()  # and signed in
    page = auth.client.get("/lookup").get_data(as_text=True)
    assert "kehu@example.com" in page  # the header shows who is signed in
    assert "我的报告" in page
    stranger = app.test_client().get("/lookup").get_data(as_text=True)
    assert "kehu@example.com" not in stranger  # and it never reaches anyone else


def test_a_query_string_prefills_a_fresh_render(app, renders):
    app.test_client().get("/lookup")
    page = app.test_client().get("/lookup?number=12345678&code=011002600111")
    html = page.get_data(as_text=True)
    assert 'value="12345678"' in html and 'value="011002600111"' in html
    again = app.test_client().get("/lookup").get_data(as_text=True)
    assert 'value="12345678"' not in again  # the prefilled page was not kept
    assert renders.count("customer/lookup.html") == 2


def test_a_flashed_message_is_shown_not_swallowed(app):
    def flash_then_lookup():
        flash("Bitte beachten", "info")
        return redirect("/lookup")

    app.add_url_rule("/_flash", view_func=flash_then_lookup)
    client = app.test_client()
    client.get("/lookup")  # the copy exists
    page = client.get("/_flash", follow_redirects=True).get_data(as_text=True)
    assert "Bitte beachten" in page
    assert "Bitte beachten" not in client.get("/lookup").get_data(as_text=True)


def test_nothing_is_kept_when_turned_off(app_factory):
    app = app_factory(SHARED_PAGE_CACHE=False)
    seen: list[str] = []

    def record(_app, template, context, **_extra):
        seen.append(template.name)

    with template_rendered.connected_to(record, app):
        for _ in range(2):
            app.test_client().get("/lookup")
    assert seen.count("customer/lookup.html") == 2


def test_plain_signed_out_visits_are_answered_without_flask(app, flask_requests):
    first = app.test_client()
    first.get("/lookup")  # Flask answers, and the response is kept
    assert len(flask_requests) == 1
    second = app.test_client()
    new_visit = second.get("/lookup")
    returning = first.get("/lookup")
    assert len(flask_requests) == 1  # both answered from the kept response
    assert new_visit.status_code == returning.status_code == 200
    # The new visitor gets a session of their own; the returning one keeps theirs.
    assert session_cookie(new_visit) and session_cookie(returning) is None
    # Each token works in its own visitor's session (the POST goes to Flask, which checks it).
    for client, page in ((second, new_visit), (first, returning)):
        token = csrf_token_from(page.get_data(as_text=True))
        assert csrf_accepted(client, token)
    other = csrf_token_from(new_visit.get_data(as_text=True))
    assert not csrf_accepted(first, other)


@pytest.mark.parametrize("language", [None, "en"])
def test_a_kept_response_is_the_one_flask_makes(app_factory, language):
    kept = app_factory(SHARED_PAGE_CACHE=True)
    fresh = app_factory(SHARED_PAGE_CACHE=False)  # the same secret key: sessions carry over
    assert isinstance(kept.wsgi_app.wsgi_app.wsgi_app, SignedOutPages)

    def visitor(app, session=None):
        client = app.test_client()
        if language:
            client.set_cookie("lang", language)
        if session:
            client.set_cookie("session", session)
        return client

    visitor(kept).get("/lookup")  # keep the response
    replayed, flask_made = visitor(kept).get("/lookup"), visitor(fresh).get("/lookup")

    def shape(response):
        headers = sorted(
            (name, value.split("=", 1)[0] + "=…;" + value.split(";", 1)[1])
            if name == "Set-Cookie"
            else (name, value)
            for name, value in response.headers
            if name != "Content-Length"
        )
        return response.status, headers, without_tokens(response.get_data(as_text=True))

    assert shape(replayed) == shape(flask_made)
    # The new session is signed as Flask signs it: Flask opens it on the visitor's next request,
    # and the replayed page's token belongs to it.
    returning = visitor(fresh, session=session_cookie(replayed))
    again = returning.get("/lookup")
    assert without_tokens(again.get_data(as_text=True)) == shape(flask_made)[2]
    assert csrf_accepted(returning, csrf_token_from(replayed.get_data(as_text=True)))
    # And the other way round: a session Flask made is replayed for, with its own token.
    flask_visitor = visitor(kept, session=session_cookie(flask_made))
    reached_flask: list[object] = []
    with request_started.connected_to(lambda sender, **_: reached_flask.append(sender), kept):
        page = flask_visitor.get("/lookup")
    assert not reached_flask
    assert session_cookie(page) is None
    assert without_tokens(page.get_data(as_text=True)) == shape(flask_made)[2]
    assert csrf_accepted(flask_visitor, csrf_token_from(page.get_data(as_text=True)))
    if language == "en":
        assert "Look up an invoice" in replayed.get_data(as_text=True)


def test_each_language_is_kept_apart(app, flask_requests):
    chinese, english = app.test_client(), app.test_client()
    english.set_cookie("lang", "en")
    for _ in range(2):
        zh_page = chinese.get("/lookup").get_data(as_text=True)
        en_page = english.get("/lookup").get_data(as_text=True)
    assert "查询发票" in zh_page and "Look up an invoice" in en_page
    assert len(flask_requests) == 2  # one per language; the second round was replayed


def _flash_waiting(client):
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "Bitte beachten")]


def _foreign_cookie(client):
    client.set_cookie("tracking", "x")


def _forged_session(client):
    client.set_cookie("session", "eyJjc3JmX3Rva2VuIjoiYSJ9.forged.signature")


def _remember_me(client):
    client.set_cookie("remember_token", "1|abc")


def _no_token_in_session(client):
    with client.session_transaction() as session:
        session.clear()
        session["_fresh"] = False


@pytest.mark.parametrize(
    "setup",
    [_flash_waiting, _foreign_cookie, _forged_session, _remember_me, _no_token_in_session],
    ids=lambda f: f.__name__,
)
def test_visits_with_more_to_them_go_to_flask(app, flask_requests, setup):
    app.test_client().get("/lookup")  # the response is kept
    client = app.test_client()
    client.get("/lookup")  # a session of its own
    setup(client)
    answer = client.get("/lookup")
    assert len(flask_requests) == 2
    html = answer.get_data(as_text=True)
    if setup is _flash_waiting:
        assert "Bitte beachten" in html
    if setup in (_forged_session, _no_token_in_session):  # Flask makes the token (and cookie)
        assert session_cookie(answer)
        token = csrf_token_from(html)
        assert csrf_accepted(client, token)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"method": "GET", "query_string": "number=12345678"},
        {"method": "HEAD"},
        {"method": "GET", "data": "x", "content_type": "text/plain"},
    ],
    ids=["query string", "HEAD", "a body"],
)
def test_other_requests_go_to_flask(app, flask_requests, request_kwargs):
    client = app.test_client()
    client.get("/lookup")
    app.test_client().open("/lookup", **request_kwargs)
    assert len(flask_requests) == 2


def test_signed_in_users_are_never_replayed(app, auth, flask_requests):
    app.test_client().get("/lookup")
    auth.register()
    before = len(flask_requests)
    page = auth.client.get("/lookup").get_data(as_text=True)
    assert len(flask_requests) == before + 1 and "kehu@example.com" in page


def test_replies_are_counted_in_the_metrics(app):
    def count():
        with app.app_context():
            lines = [
                line
                for line in metrics.render().splitlines()
                if line.startswith("portal_http_requests_total")
                and 'endpoint="customer.lookup",method="GET",status="200"' in line
            ]
        return int(float(lines[0].rsplit(" ", 1)[1])) if lines else 0

    before = count()
    for _ in range(3):
        app.test_client().get("/lookup")
    assert count() == before + 3


@pytest.mark.parametrize(
    ("headers", "keepable"),
    [
        ([("Content-Type", "text/html; charset=utf-8")], True),
        ([("Content-Type", "text/html; charset=utf-8"), ("Set-Cookie", "session=v; Path=/")], True),
        ([("Content-Type", "application/json")], False),
        (
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Set-Cookie", "session=v; Path=/"),
                ("Set-Cookie", "lang=en; Path=/"),
            ],
            False,
        ),
        ([("Content-Type", "text/html; charset=utf-8"), ("Set-Cookie", "lang=en; Path=/")], False),
        (
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Set-Cookie", "session=v; Expires=Thu, 01 Jan 2099 00:00:00 GMT; Path=/"),
            ],
            False,
        ),
    ],
)
def test_only_pages_whose_secrets_can_be_made_again_are_kept(app, headers, keepable):
    middleware = SignedOutPages(app)
    kept = middleware._keepable([*headers, ("Content-Length", "10")])
    assert (kept is not None) is keepable
    if kept is not None:
        replayed, template = kept
        assert all(name not in ("Set-Cookie", "Content-Length") for name, _ in replayed)
        assert template in (None, "session=\x00csrf-token\x00; Path=/")


def test_headers_added_outside_flask_are_not_kept(app):
    """HSTS goes on HTTPS answers only, replayed or not."""
    app.test_client().get("/lookup", base_url="https://localhost")  # kept from an HTTPS visit
    over_http = app.test_client().get("/lookup")
    over_https = app.test_client().get("/lookup", base_url="https://localhost")
    assert "Strict-Transport-Security" not in over_http.headers
    assert over_https.headers.getlist("Strict-Transport-Security") == [
        "max-age=31536000; includeSubDomains"
    ]
    assert over_http.headers.getlist("Content-Security-Policy") == over_https.headers.getlist(
        "Content-Security-Policy"
    )
    assert len(over_http.headers.getlist("Content-Security-Policy")) == 1
