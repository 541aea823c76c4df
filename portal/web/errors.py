"""Error pages inside the layout (HTML) or JSON for API clients; never a bare 500."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (request.accept_mimetypes.best == "application/json")


def _titles():
    return {
        400: _("The request could not be understood"),
        403: _("You do not have access to this page"),
        404: _("Page not found"),
        405: _("This action is not allowed here"),
        413: _("The file is too large"),
        429: _("Too many requests"),
        500: _("Something went wrong on our side"),
        503: _("The service is briefly unavailable"),
    }


def _explanations():
    return {
        400: _("Please go back, check what you entered and try again."),
        403: _("If you think you should have access, contact the service desk."),
        404: _("The address may be mistyped, or the page no longer exists."),
        405: _("Please go back and use the buttons on the page."),
        413: _("Please choose a smaller file and try again."),
        429: _("Please wait a moment before trying again."),
        500: _("The problem has been logged. Please try again in a few minutes."),
        503: _(
            "We cannot reach our records right now. Nothing you sent is lost; "
            "please try again in a minute."
        ),
    }


def render_error(status: int, message: str | None = None):
    title = _titles().get(status, _("Something went wrong"))
    detail = message or _explanations().get(status, "")
    if _wants_json():
        return jsonify(error={"status": status, "title": title, "detail": detail}), status
    return render_template("errors/error.html", status=status, title=title, detail=detail), status


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_error(
            400,
            _("Your form expired or was sent from elsewhere. Reload the page and try again."),
        )

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(error: RateLimitExceeded):
        # The breached limit's window is when it surely has room again. (Flask-Limiter's own
        # X-RateLimit headers cost two Redis reads on every limited request: turned off.)
        body, status = render_error(429)
        response = app.make_response((body, status))
        response.headers["Retry-After"] = str(error.limit.limit.get_expiry())
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return render_error(error.code or 500)

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def database_unavailable(error: Exception):
        # The database is down, unreachable, out of pooled connections or past the statement
        # timeout: a clear 503 (load balancers and clients retry), not a 500.
        app.logger.warning("database unavailable on %s %s: %s", request.method, request.path, error)
        from ..extensions import db

        try:
            db.session.rollback()
        except Exception:  # the connection is gone; the session is discarded at teardown
            app.logger.debug("rollback failed after a database error", exc_info=True)
        try:
            body, status = render_error(503)
        except Exception:  # the layout itself needed the database (a signed-in user's menu)
            from markupsafe import escape

            title, detail = _titles()[503], _explanations()[503]
            body, status = f"<!doctype html><h1>{escape(title)}</h1><p>{escape(detail)}</p>", 503
        response = app.make_response((body, status))
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        from ..extensions import db

        db.session.rollback()
        return render_error(500)
