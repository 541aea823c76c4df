"""Cross-origin protection for every browser request that may change something.

A browser says where a request comes from: ``Sec-Fetch-Site`` (every current browser) and
``Origin`` (on every cross-origin POST). A request with ``Sec-Fetch-Site`` other than
``same-origin`` or ``none`` (typed by the user), or without it but with an ``Origin`` that is not
this host (or one of ``TRUSTED_ORIGINS``), is refused as Flask-WTF refuses a bad token
(``CSRFError``: a 400 with the "sent from elsewhere" page). A request with neither header is not
from a browser, so it carries no visitor's cookies against their will. This is the algorithm of
Go's ``net/http.CrossOriginProtection`` (Filippo Valsorda, "Cross-Site Request Forgery", 2025).

The API (``/api/v1``) authenticates with a bearer token that a cross-site page cannot send, and
is left alone.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from flask_wtf.csrf import CSRFError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SAME_ORIGIN = frozenset({"same-origin", "none"})
UNCHECKED_BLUEPRINTS = frozenset({"api"})


def is_cross_origin() -> bool:
    """True if this request was sent by a page of another site (module docstring)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.lower() not in SAME_ORIGIN
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    if origin in current_app.config.get("TRUSTED_ORIGINS", ()):
        return False
    parts = urlsplit(origin)
    return not parts.scheme or parts.netloc != request.host


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_cross_origin():
        if request.method in SAFE_METHODS or request.blueprint in UNCHECKED_BLUEPRINTS:
            return
        if is_cross_origin():
            raise CSRFError("The request was sent from another site.")
