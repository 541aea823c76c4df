"""The help centre: pages kept as Markdown files (portal/help/pages/<language>/<slug>.md) so
staff edit them in the repository, rendered with the ``markdown`` library, searchable."""

from flask import Blueprint

bp = Blueprint("help", __name__)

from . import routes  # noqa: E402,F401
