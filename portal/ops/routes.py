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


@bp.route("/metrics")
def metrics():
    from flask import Response, abort, current_app, request

    from .metrics import render

    token = current_app.config.get("METRICS_TOKEN")
    if token and request.headers.get("Authorization", "") != f"Bearer {token}":
        abort(404)
    return Response(render(), mimetype="text/plain; version=0.0.4")
