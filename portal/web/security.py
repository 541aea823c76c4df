"""HTTP security headers on every response; session lifetime limits."""

from __future__ import annotations

import time

from flask import Flask, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user

# No inline script or style anywhere: everything comes from /static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
ALWAYS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(self), geolocation=(), microphone=()"),
)
_ALWAYS_LOWER = tuple((header, header[0].lower()) for header in ALWAYS)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
# Pages may show personal data: never let a shared cache keep them.
NO_STORE = ("Cache-Control", "no-store")


class SecurityHeaders:
    """WSGI middleware adding the headers above to every response, error pages included.

    A view may set its own (evidence files have a stricter CSP, downloads their own caching):
    these only fill in what is missing. Working on the plain header list the server is handed
    costs a fraction of a Flask ``after_request`` hook editing ``Response.headers``, which on
    the lookup form page was a sixth of the portal's own work.
    """

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        secure = environ.get("wsgi.url_scheme") == "https"

        def add_headers(status, headers, exc_info=None):
            present = {name.lower(): value for name, value in headers}
            headers.extend(h for h, lower in _ALWAYS_LOWER if lower not in present)
            if secure and "strict-transport-security" not in present:
                headers.append(HSTS)
            if "cache-control" not in present and present.get("content-type", "").startswith(
                "text/html"
            ):
                headers.append(NO_STORE)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, add_headers)


def register(app: Flask) -> None:
    @app.before_request
    def enforce_session_lifetime():
        """Sign out after SESSION_IDLE_MINUTES without a request, or SESSION_ABSOLUTE_HOURS."""
        # No cookie, no session to end (and no user to load: a first visit stays cheap).
        if not request.cookies or request.endpoint == "static":
            return None
        if not current_user.is_authenticated:
            return None
        now = int(time.time())
        started, seen = session.get("started_at"), session.get("seen_at")
        if started is None or seen is None:
            # Signed in by the remember-me cookie: a new session starts now.
            session["started_at"] = session["seen_at"] = now
            return None
        config = app.config
        if (
            now - seen > config["SESSION_IDLE_MINUTES"] * 60
            or now - started > config["SESSION_ABSOLUTE_HOURS"] * 3600
        ):
            logout_user()
            session.clear()
            flash(_("Your session has ended. Please sign in again."), "info")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if now - seen > 60:  # refresh the idle clock without rewriting the cookie every time
            session["seen_at"] = now
        return None

    app.wsgi_app = SecurityHeaders(app.wsgi_app)
