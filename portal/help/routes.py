"""Help pages and their search: thin views over portal/services/helpcentre."""

from flask import abort, render_template, request

from ..services import helpcentre
from ..web.i18n import current_language
from . import bp


@bp.route("/help/")
def index():
    language = current_language()
    pages = [helpcentre.page(slug, language) for slug in helpcentre.TOPICS]
    return render_template("help/index.html", pages=[p for p in pages if p], query="")


@bp.route("/help/search")
def search():
    query = request.args.get("q", "")[:100]
    hits = helpcentre.search(query, current_language())
    return render_template("help/search.html", query=query, hits=hits)


@bp.route("/help/<slug>")
def topic(slug: str):
    found = helpcentre.page(slug, current_language())
    if found is None:
        abort(404)
    pages = [helpcentre.page(s, current_language()) for s in helpcentre.TOPICS]
    return render_template("help/page.html", page=found, pages=[p for p in pages if p], query="")
