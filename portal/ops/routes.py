"""``/healthz``: is the database, Redis and the registry reachable? JSON, 200 or 503."""

from flask import jsonify

from ..extensions import csrf
from ..services import health
from . import bp


@bp.route("/healthz")
@csrf.exempt
def healthz():
    report = health.check_all()
    return jsonify(report), (200 if report["ok"] else 503)
