"""HTTP security headers on every response."""

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

    @app.after_request
    def set_security_headers(response):
        # A view may set its own (evidence files have a stricter CSP); these fill in the rest.
        # One pass over the few headers already set: Headers.setdefault scans them per call.
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}
        for name, value in ALWAYS:
            if name.lower() not in present:
                headers.add(name, value)
        if request.is_secure and "strict-transport-security" not in present:
            headers.add("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if "cache-control" not in present and response.mimetype == "text/html":
            # Pages may show personal data: never let a shared cache keep them.
            headers.add("Cache-Control", "no-store")
        return response
