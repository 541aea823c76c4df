"""Pages that are the same for every signed-out visitor, kept whole (Flask-Caching).

The lookup form is the portal's front door and its busiest page. For a signed-out visitor with
nothing personal to show — no flashed message, no query string (a prefilled form) — it is the
same page for everyone who reads that language: its forms are ``SessionlessForm`` (no token,
``portal/web/forms.py``), and nothing in it comes from the session. ``@shared_page`` renders
such a view once per path and language, keeps the HTML in the app's cache (``CACHE_TYPE``:
``SimpleCache`` in each worker process, ``NullCache`` in development, where templates are being
edited) and answers later visits from it, inside Flask's normal request pipeline: every hook,
error handler, signal and middleware runs as for any view.

What is kept is the view's HTML and nothing else: no header, no cookie. So whatever a
request's session, login or hooks add to its response (a Set-Cookie, a Vary) is that request's
own, and no visitor can receive another's. Everyone else (signed in, a message waiting, a query
string) gets the view rendered for them, with the ``no-store`` every personal page has
(``portal/web/security.py``).

The kept page goes out with an ``ETag`` and ``Cache-Control: no-cache`` (a browser may keep
it, but asks each time whether it is still current: a 304 when it is) and ``Vary: Cookie``
(signing in, or choosing another language, changes the page). A template that gains something
per visitor (a nonce, a banner for one user) must not be rendered by a ``@shared_page`` view.
"""

from __future__ import annotations

import hashlib
from functools import wraps

from flask import current_app, request, session
from flask_login import current_user

from ..extensions import cache, limiter
from .i18n import select_locale


def is_personal_visit() -> bool:
    """True unless this is a plain signed-out GET: no query string, no message waiting.

    A visitor who sends no cookie has no session (so no message) and no sign-in (Flask-Login
    finds a user only in the session or the remember-me cookie): nothing to load for them."""
    if request.query_string:
        return True
    if not request.cookies:
        return False
    return bool(current_user.is_authenticated or session.get("_flashes"))


def shared_page(view):
    """Serve ``view`` (which returns HTML) from the cache to plain signed-out visitors."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if request.method not in ("GET", "HEAD") or is_personal_visit():
            return view(*args, **kwargs)
        key = f"page:{request.path}:{select_locale()}"
        page = cache.get(key)
        if page is None:
            html = view(*args, **kwargs)
            if not isinstance(html, str):  # a redirect, an error: not a page to keep
                return html
            body = html.encode()  # kept encoded: each visit sends these bytes as they are
            page = (body, hashlib.sha256(body).hexdigest()[:32])
            cache.set(key, page)
        body, etag = page
        response = current_app.response_class(body, mimetype="text/html")
        response.set_etag(etag)
        response.headers["Cache-Control"] = "no-cache"
        response.vary.add("Cookie")
        return response.make_conditional(request)

    wrapper.shared_page = True
    return wrapper


@limiter.request_filter
def _shared_pages_are_not_rate_limited() -> bool:
    """No limit is declared on a shared page: tell Flask-Limiter so (its public
    ``request_filter``), rather than have it work that out from its registry on each visit."""
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "shared_page", False) and request.method in ("GET", "HEAD")
