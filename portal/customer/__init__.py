"""Pages for customers: the home page, the language switch (and later lookup and cases)."""

from flask import Blueprint

bp = Blueprint("customer", __name__)

from . import presenters, routes  # noqa: E402,F401
