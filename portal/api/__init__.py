"""The JSON API for machine clients under ``/api/v1`` (bearer-token auth, no cookies, no CSRF)."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from . import routes  # noqa: E402,F401
