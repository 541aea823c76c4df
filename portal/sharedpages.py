"""Pages that are the same for every signed-out visitor, rendered once per language.

The empty lookup form is the portal's front door and its busiest page; DESIGN.md §8 holds it to
60 % of the throughput of a bare Flask route, which no page rendered from Jinja templates reaches
(the layout alone runs dozens of translations and URL builds). For a signed-out visitor with
nothing personal to show (no flashed message, no query string), such a page differs from one
visitor to the next only in the CSRF token. So it is rendered once per language and worker
process, with the token cut out, and each request gets a copy with its own token put back.

Signed-in users, query strings (prefilled forms) and flashed messages always get a fresh render.
Templates and catalogs change only with a deploy, which restarts the workers; where templates
reload (development), or with ``SHARED_PAGE_CACHE`` off, nothing is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import current_app, get_flashed_messages, render_template, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from .i18n import select_locale

# A rendered page never holds U+0000 (input holding it is refused before any view runs), so it
# marks, unambiguously, where each request's token goes.
TOKEN_SLOT = "\x00csrf-token\x00"  # noqa: S105 - a marker, not a secret

_lock = threading.Lock()


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
    token = generate_csrf()
    # The language as the locale selector picks it, without building a Babel locale.
    language = select_locale() if request.cookies else app.config["BABEL_DEFAULT_LOCALE"]
    pages = app.extensions["shared_pages"]
    page = pages.get((template, language))
    if page is not None:
        return page.replace(TOKEN_SLOT, token)
    html = render_template(template, **context())
    with _lock:
        pages.setdefault((template, language), html.replace(token, TOKEN_SLOT))
    return html


def init_app(app) -> None:
    """Give ``app`` its (empty) set of kept pages, by (template, language): none at all when
    ``SHARED_PAGE_CACHE`` is off or templates reload (development)."""
    kept = app.config["SHARED_PAGE_CACHE"] and not app.jinja_env.auto_reload
    app.extensions["shared_pages"] = {} if kept else None
