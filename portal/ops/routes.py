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
    import hmac

    from flask import Response, abort, current_app, request

    from .metrics import render

    token = current_app.config.get("METRICS_TOKEN")
    given = request.headers.get("Authorization", "").encode()
    if token and not hmac.compare_digest(given, f"Bearer {token}".encode()):
        abort(404)
    return Response(render(), mimetype="text/plain; version=0.0.4")
