"""The front door: the signed-out lookup page is kept whole and served through Flask's normal
pipeline (portal/web/pages.py), and no browser POST from another site is taken
(portal/web/origin.py). Behaviour only, attacks included."""

from __future__ import annotations

import threading

import pytest
from flask import flash, redirect, request_finished, template_rendered

from portal.ops import metrics
from tests.conftest import AuthActions, csrf_token_from

LOOKUP = {"code": "011002600111", "number": "12345678", "issue_date": "2026-05-01"}


@pytest.fixture
def renders(app):
    """The templates rendered while the test runs, in order."""
    seen: list[str] = []

    def record(_app, template, context, **_extra):
        seen.append(template.name)

    template_rendered.connect(record, app)
    yield seen
    template_rendered.disconnect(record, app)


def set_cookies(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


# --- the kept page ---------------------------------------------------------------------------


def test_signed_out_visitors_get_one_page_rendered_once(app, renders):
    first = app.test_client().get("/lookup")
    second = app.test_client().get("/lookup")
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data()
    assert renders.count("customer/lookup.html") == 1  # the second got the kept page
    assert "csrf_token" not in first.get_data(as_text=True)  # nothing per visitor in it
    for answer in (first, second):
        assert set_cookies(answer) == []  # a signed-out page starts no session
        assert answer.headers["Cache-Control"] == "no-cache"
        assert answer.headers["ETag"]
        assert "Cookie" in answer.headers["Vary"]


def test_a_browser_revalidates_with_the_etag(client):
    etag = client.get("/lookup").headers["ETag"]
    again = client.get("/lookup", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert client.get("/lookup", headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_kept_page_is_what_a_fresh_render_gives(app_factory):
    kept = app_factory()
    fresh = app_factory(
        CACHE_TYPE="NullCache", CACHE_NO_NULL_WARNING=True
    )  # as in development: nothing kept
    kept.test_client().get("/lookup")
    assert (
        kept.test_client().get("/lookup").get_data()
        == fresh.test_client().get("/lookup").get_data()
    )


def test_each_language_has_its_own_page(app, renders):
    chinese, english = app.test_client(), app.test_client()
    english.set_cookie("lang", "en")
    zh_page = chinese.get("/lookup").get_data(as_text=True)
    en_page = english.get("/lookup").get_data(as_text=True)
    assert "查询发票" in zh_page and 'lang="zh-CN"' in zh_page
    assert "Look up an invoice" in en_page and '<html lang="en">' in en_page
    chinese.get("/lookup"), english.get("/lookup")
    assert renders.count("customer/lookup.html") == 2


def test_the_kept_page_goes_through_flasks_pipeline(app):
    """Hooks, signals and metrics run for a kept page as for any view."""
    finished: list[int] = []

    def record(_app, response, **_extra):
        finished.append(response.status_code)

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
    with request_finished.connected_to(record, app):
        for _ in range(3):
            answer = app.test_client().get("/lookup")
    assert finished == [200, 200, 200]
    assert count() == before + 3
    assert answer.headers["X-Frame-Options"] == "DENY"  # the security headers too


# --- what is never kept, or never shared -----------------------------------------------------


def test_signed_in_pages_are_never_kept_nor_shared(app, renders):
    app.test_client().get("/lookup")  # a signed-out visitor fills the kept page
    auth = AuthActions(app.test_client())
    auth.register()
    page = auth.client.get("/lookup")
    html = page.get_data(as_text=True)
    assert "kehu@example.com" in html and "我的报告" in html  # their own page
    assert page.headers["Cache-Control"] == "no-store" and "ETag" not in page.headers
    stranger = app.test_client().get("/lookup").get_data(as_text=True)
    assert "kehu@example.com" not in stranger
    home = auth.client.get("/")
    assert "kehu@example.com" in home.get_data(as_text=True)
    assert home.headers["Cache-Control"] == "no-store"
    assert "kehu@example.com" not in app.test_client().get("/").get_data(as_text=True)


def test_a_visitor_without_cookies_is_not_looked_for_as_a_user(app):
    """No session and no remember-me cookie: nobody can be signed in, so the kept page is
    served without asking Flask-Login (nor the session) who the visitor is."""
    from flask_login import user_accessed

    app.test_client().get("/lookup")  # the page is kept
    loads = []

    def record(_app, **_extra):
        loads.append(1)

    user_accessed.connect(record, app)
    try:
        first_visit = app.test_client().get("/lookup")
        assert first_visit.status_code == 200 and loads == []
        chose_english = app.test_client()
        chose_english.set_cookie("lang", "en")
        page = chose_english.get("/lookup")
        assert page.status_code == 200 and 'lang="en"' in page.get_data(as_text=True)
        assert loads  # a cookie may belong to a session: then Flask-Login is asked
    finally:
        user_accessed.disconnect(record, app)


def test_a_query_string_prefills_a_page_of_its_own(app, renders):
    app.test_client().get("/lookup")
    page = app.test_client().get("/lookup?number=12345678&code=011002600111")
    html = page.get_data(as_text=True)
    assert 'value="12345678"' in html and 'value="011002600111"' in html
    assert page.headers["Cache-Control"] == "no-store"
    again = app.test_client().get("/lookup").get_data(as_text=True)
    assert 'value="12345678"' not in again  # the prefilled page was not kept
    assert renders.count("customer/lookup.html") == 2


def test_a_flashed_message_is_shown_to_its_visitor_only(app):
    def flash_then_lookup():
        flash("Bitte beachten", "info")
        return redirect("/lookup")

    app.add_url_rule("/_flash", view_func=flash_then_lookup)
    client = app.test_client()
    client.get("/lookup")  # the page is kept
    page = client.get("/_flash", follow_redirects=True).get_data(as_text=True)
    assert "Bitte beachten" in page
    assert "Bitte beachten" not in client.get("/lookup").get_data(as_text=True)
    assert "Bitte beachten" not in app.test_client().get("/lookup").get_data(as_text=True)


def test_no_visitor_receives_anothers_cookie_or_token(app):
    """Visitors in many states, at once: signed-out ones get the kept page and no cookie they
    did not already hold; a visitor with a session keeps their own; signed-in ones get their own
    page with their own token."""
    users = []
    for n in range(3):
        auth = AuthActions(app.test_client())
        auth.register(email=f"kehu{n}@example.com")
        users.append(auth.client)
    with_session = app.test_client()
    with_session.get("/auth/login")  # holds a CSRF token in its session
    serializer = app.session_interface.get_signing_serializer(app)
    own_token = serializer.loads(with_session.get_cookie("session").value)["csrf_token"]
    english = app.test_client()
    english.set_cookie("lang", "en")
    signed_out = [app.test_client() for _ in range(4)] + [with_session, english]
    kept = {}
    problems: list[str] = []

    def visit(client, who):
        for _ in range(15):
            answer = client.get("/lookup")
            html = answer.get_data(as_text=True)
            cookies = set_cookies(answer)
            if who.startswith("user"):
                n = int(who[4:])
                if f"kehu{n}@example.com" not in html or html.count("@example.com") != 1:
                    problems.append(f"{who} saw another's page")
            else:
                if "@example.com" in html or "csrf_token" in html:
                    problems.append(f"{who} got something personal")
                for cookie in cookies:  # only the holder of a session gets it back (refreshed)
                    value = cookie.split(";", 1)[0].removeprefix("session=")
                    if (
                        client is not with_session
                        or serializer.loads(value)["csrf_token"] != own_token
                    ):
                        problems.append(f"{who} got a cookie: {cookie}")
                kept.setdefault(client.get_cookie("lang") is not None, set()).add(html)

    threads = [
        threading.Thread(target=visit, args=(client, f"user{n}")) for n, client in enumerate(users)
    ] + [threading.Thread(target=visit, args=(c, f"anon{n}")) for n, c in enumerate(signed_out)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert {len(pages) for pages in kept.values()} == {1}  # one page per language
    assert serializer.loads(with_session.get_cookie("session").value)["csrf_token"] == own_token


# --- cross-origin POSTs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another party
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame, a data: URL
        {"Origin": "http://localhost.evil.example"},
    ],
    ids=["cross-site", "same-site", "other origin", "null origin", "look-alike host"],
)
def test_a_cross_site_post_is_refused(client, headers):
    answer = client.post("/lookup", data=LOOKUP, headers=headers)
    assert answer.status_code == 400
    assert "发送" in answer.get_data(as_text=True) or "form" in answer.get_data(as_text=True)
    language = client.post("/language", data={"language": "en"}, headers=headers)
    assert language.status_code == 400 and client.get_cookie("lang") is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "http://localhost"},
        {},  # not a browser: it carries no visitor's cookies against their will
    ],
    ids=["same-origin", "typed by the user", "own origin, no fetch metadata", "no headers"],
)
def test_a_same_origin_post_is_taken(client, headers):
    assert client.post("/lookup", data=LOOKUP, headers=headers).status_code != 400
    assert client.post("/language", data={"language": "en"}, headers=headers).status_code == 302
    assert client.get_cookie("lang").value == "en"


def test_a_trusted_origin_may_post(app_factory):
    client = app_factory(TRUSTED_ORIGINS=("https://portal.example",)).test_client()
    assert (
        client.post(
            "/lookup", data=LOOKUP, headers={"Origin": "https://portal.example"}
        ).status_code
        != 400
    )


def test_a_cross_site_post_is_refused_even_with_a_good_token(app):
    """The check stands in front of token-protected forms too: a token leaked to another site
    does not let that site sign a visitor out."""
    auth = AuthActions(app.test_client())
    auth.register()
    token = csrf_token_from(auth.client.get("/").get_data(as_text=True))
    refused = auth.client.post(
        "/auth/logout", data={"csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert refused.status_code == 400
    assert "kehu@example.com" in auth.client.get("/").get_data(as_text=True)  # still signed in
