"""The signed-out lookup form is rendered once per language and served with each visitor's token."""

from __future__ import annotations

import re

import pytest
from flask import flash, redirect, template_rendered

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


def without_tokens(html: str) -> str:
    return TOKEN_RE.sub('name="csrf_token" value="…"', html)


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
