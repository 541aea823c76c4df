"""Pages that are the same for every signed-out visitor, rendered once per language.

The empty lookup form is the portal's front door and its busiest page; DESIGN.md §8 holds it to
60 % of the throughput of a bare Flask route, which no page rendered from Jinja templates reaches
(the layout alone runs dozens of translations and URL builds). For a signed-out visitor with
nothing personal to show (no flashed message, no query string), such a page differs from one
visitor to the next only in the CSRF token. So it is rendered once per language and worker
process, with the token cut out, and each request gets a copy with its own token put back
(``render``).

Flask's request machinery (contexts, hooks, loading the session and the user, the response
object) still costs more than that copy. So ``SignedOutPages``, a WSGI middleware, keeps each
such response whole, as Flask made it, by path and language, and answers the next plain
signed-out visit from it without Flask. A plain visit is a GET with no query string and no
body whose cookies are at most a session holding nothing but its CSRF token and the language
cookie. The copy gets the visitor's token: signed from the session's raw value, or, for a
visitor without a valid session (a first visit), from a new raw value that goes out in a new
session cookie, signed as Flask signs it. Everything else goes to Flask: signed-in users,
messages waiting, query strings (prefilled forms), other cookies, bodies, other methods.

Templates and catalogs change only with a deploy, which restarts the workers; where templates
reload (development), or with ``SHARED_PAGE_CACHE`` off, nothing is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple

from flask import Flask, current_app, get_flashed_messages, render_template, request
from flask_login import current_user
from itsdangerous import BadData
from werkzeug.http import parse_cookie

from ..ops import metrics
from . import forms
from .i18n import LANG_COOKIE, select_locale

# A rendered page never holds U+0000 (input holding it is refused before any view runs), so it
# marks, unambiguously, where each request's token goes.
TOKEN_SLOT = "\x00csrf-token\x00"  # noqa: S105 - a marker, not a secret

_lock = threading.Lock()
# Set by ``render`` on the request it serves a shared page: (endpoint, language, token), for
# ``SignedOutPages`` to keep the response.
RECORDABLE = "portal.web.sharedpages.recordable"
# Besides its CSRF token, all a plain signed-out visitor's session may hold: the "not fresh"
# flag, once Flask-Login has looked at it. Anything more (a user, messages, a sign-in time) goes
# to Flask.
PLAIN_SESSION_EXTRAS = frozenset({"_fresh"})


def shareable() -> bool:
    """True when this request may get the page every signed-out visitor gets."""
    if current_app.extensions["shared_pages"] is None:
        return False
    req = request._get_current_object()
    if req.method not in ("GET", "HEAD") or req.query_string:
        return False
    # A first visit (no cookie at all) is signed out, has no message waiting and speaks the
    # default language: nothing else to look at.
    return not req.cookies or (not current_user.is_authenticated and not get_flashed_messages())


def render(template: str, context: Callable[[], dict]) -> str:
    """``template`` rendered with ``context()``, from the per-language copy when shareable.

    ``context`` must build the same values for every signed-out visitor (empty forms, no
    personal data): that is what makes the copy shareable. It is called only on a fresh render.
    """
    if not shareable():
        return render_template(template, **context())
    app = current_app._get_current_object()
    req = request._get_current_object()
    token = forms.generate_csrf()
    # The language as the locale selector picks it, without building a Babel locale.
    language = select_locale() if req.cookies else app.config["BABEL_DEFAULT_LOCALE"]
    req.environ[RECORDABLE] = (req.endpoint, language, token)
    pages = app.extensions["shared_pages"]
    page = pages.get((template, language))
    if page is not None:
        return page.replace(TOKEN_SLOT, token)
    html = render_template(template, **context())
    with _lock:
        pages.setdefault((template, language), html.replace(token, TOKEN_SLOT))
    return html


class _Page(NamedTuple):
    """A shared page's response with the token cut out of the body (``TOKEN_SLOT``)."""

    endpoint: str
    status: str
    headers: list[tuple[str, str]]  # all but Content-Length and Set-Cookie
    body: str


class SignedOutPages:
    """WSGI middleware answering plain signed-out visits from kept responses (module docstring).

    A response is kept, by path and language, when ``render`` served a shared page
    (``RECORDABLE``) and Flask answered 200 with an HTML page and, if any cookie, only a session
    cookie that ends with the browser. That cookie, with its value cut out, is what a new
    session's cookie looks like (``cookie_template``); until one was seen, first visits go to
    Flask. Replies are counted in the request metrics under the view's endpoint.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.wsgi_app = app.wsgi_app
        self.pages: dict[tuple[str, str, str], _Page] = {}  # by (SCRIPT_NAME, PATH_INFO, language)
        self.paths: set[tuple[str, str]] = set()  # the (SCRIPT_NAME, PATH_INFO) of those pages
        self.cookie_template: str | None = None  # "session=<slot>; Secure; HttpOnly; ..."
        self.cookie_name = app.session_interface.get_cookie_name(app)
        _, self.token_key = forms.csrf_settings(app)  # the session entry of the raw token

    def __call__(self, environ, start_response):
        if (
            environ.get("REQUEST_METHOD") != "GET"
            or environ.get("QUERY_STRING")
            or environ.get("CONTENT_LENGTH", "0") not in ("", "0")
            or environ.get("HTTP_TRANSFER_ENCODING")
        ):
            return self.wsgi_app(environ, start_response)
        path = (environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", ""))
        if path not in self.paths:  # not a shared page, or not kept yet: Flask, watched
            return self._keep(path, environ, start_response)
        visitor = self._plain_visitor(environ)
        if visitor is None:
            return self.wsgi_app(environ, start_response)
        language, raw = visitor
        page = self.pages.get((*path, language))
        if page is None or (raw is None and self.cookie_template is None):
            return self._keep(path, environ, start_response)
        return self._reply(page, raw, environ, start_response)

    def _plain_visitor(self, environ) -> tuple[str, str | None] | None:
        """(language, the session's raw CSRF value or None) of a plain signed-out visitor,
        or None for anyone else."""
        app = self.app
        language = app.config["BABEL_DEFAULT_LOCALE"]
        header = environ.get("HTTP_COOKIE")
        if not header:
            return language, None
        cookies = parse_cookie(header)
        if not cookies.keys() <= {self.cookie_name, LANG_COOKIE}:
            return None
        if cookies.get(LANG_COOKIE) in app.config["LANGUAGES"]:  # as select_locale() reads it
            language = cookies[LANG_COOKIE]
        value = cookies.get(self.cookie_name)
        if not value:
            return language, None
        serializer = app.session_interface.get_signing_serializer(app)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:  # as Flask opens a session
            data = serializer.loads(value, max_age=max_age)
        except BadData:
            return None  # Flask starts the visitor a new session
        raw = data.get(self.token_key)
        if not isinstance(raw, str) or not data.keys() - {self.token_key} <= PLAIN_SESSION_EXTRAS:
            return None
        return language, raw

    def _reply(self, page: _Page, raw: str | None, environ, start_response):
        app = self.app
        secret_key, _ = forms.csrf_settings(app)  # read per reply: the key may rotate
        headers = list(page.headers)
        if raw is None:  # a new session, as Flask would save it
            raw = forms.new_raw_token()
            value = app.session_interface.get_signing_serializer(app).dumps({self.token_key: raw})
            headers.append(("Set-Cookie", self.cookie_template.replace(TOKEN_SLOT, value)))
        body = page.body.replace(TOKEN_SLOT, forms.sign_token(secret_key, raw)).encode()
        headers.append(("Content-Length", str(len(body))))
        start_response(page.status, headers)
        started = environ.get(metrics.STARTED)
        if started is not None:
            metrics.observe(page.endpoint, "GET", 200, started)
        return [body]

    def _keep(self, path, environ, start_response):
        """Let Flask answer, and keep the response if it is a shared page."""
        answer = {}

        def note(status, headers, exc_info=None):
            # A copy: the middleware outside adds its headers to this list, and adds them to
            # replies too, as each request needs (HSTS only over HTTPS).
            answer["status"], answer["headers"] = status, list(headers)
            return start_response(status, headers, exc_info)

        body_parts = self.wsgi_app(environ, note)
        recordable = environ.get(RECORDABLE)
        if recordable is None or not answer.get("status", "").startswith("200 "):
            return body_parts
        try:
            body = b"".join(body_parts)
        finally:
            if hasattr(body_parts, "close"):
                body_parts.close()
        endpoint, language, token = recordable
        kept = self._keepable(answer["headers"])
        if kept is not None:
            headers, cookie_template = kept
            if cookie_template is not None:
                self.cookie_template = cookie_template
            page = _Page(
                endpoint, answer["status"], headers, body.decode().replace(token, TOKEN_SLOT)
            )
            self.pages.setdefault((*path, language), page)
            self.paths.add(path)
        return [body]

    def _keepable(self, headers) -> tuple[list[tuple[str, str]], str | None] | None:
        """(the headers to replay, the session cookie's template or None), or None if the
        response cannot be replayed."""
        kept, cookies, content_type = [], [], ""
        for name, value in headers:
            lowered = name.lower()
            if lowered == "set-cookie":
                cookies.append(value)
            elif lowered != "content-length":
                kept.append((name, value))
                if lowered == "content-type":
                    content_type = value.lower()
        if content_type != "text/html; charset=utf-8" or len(cookies) > 1:
            return None
        if not cookies:
            return kept, None
        if not cookies[0].startswith(f"{self.cookie_name}="):
            return None
        _, separator, attributes = cookies[0].partition(";")
        if "expires=" in attributes.lower() or "max-age=" in attributes.lower():
            return None
        return kept, f"{self.cookie_name}={TOKEN_SLOT}{separator}{attributes}"


def init_app(app) -> None:
    """Give ``app`` its (empty) set of kept pages, by (template, language), and the
    ``SignedOutPages`` middleware: neither when ``SHARED_PAGE_CACHE`` is off or templates reload
    (development)."""
    kept = app.config["SHARED_PAGE_CACHE"] and not app.jinja_env.auto_reload
    app.extensions["shared_pages"] = {} if kept else None
    if kept:
        app.wsgi_app = SignedOutPages(app)
