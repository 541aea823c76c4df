"""``/healthz`` (liveness, for load balancers), ``/status`` (dependencies, for people and
monitors) and ``/metrics``."""

import hmac

from flask import Response, abort, current_app, jsonify, request

from ..extensions import csrf
from ..services import health
from . import bp


@bp.route("/healthz")
@csrf.exempt
def healthz():
    """200 while this process and the database answer; Redis and the registry do not count."""
    report = health.liveness()
    return jsonify(report), (200 if report["ok"] else 503)


@bp.route("/status")
@csrf.exempt
def status():
    """Redis, registry, workers, backlog: 200 when all are well, else 503 (kept a few seconds).
    Behind ``METRICS_TOKEN`` when it is set, as ``/metrics``."""
    _require_metrics_token()
    report = health.status()
    return jsonify(report), (200 if report["ok"] else 503)


@bp.route("/metrics")
def metrics():
    from .metrics import render

    _require_metrics_token()
    return Response(render(), mimetype="text/plain; version=0.0.4")


def _require_metrics_token() -> None:
    token = current_app.config.get("METRICS_TOKEN")
    given = request.headers.get("Authorization", "").encode()
    if token and not hmac.compare_digest(given, f"Bearer {token}".encode()):
        abort(404)
