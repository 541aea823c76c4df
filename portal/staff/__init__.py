"""Pages for staff (reviewers, supervisors, admins). Customers never reach them."""

from flask import Blueprint

bp = Blueprint("staff", __name__)

from . import routes  # noqa: E402,F401
