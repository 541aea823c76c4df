"""Health checks of the parts the portal depends on."""

from __future__ import annotations

import time

import requests
from flask import current_app
from sqlalchemy import text

from ..extensions import db
from ..queue import redis_connection


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:  # any failure means unhealthy; the reason is for operators
        return {
            "ok": False,
            "error": type(error).__name__,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def check_all() -> dict:
    """Check the database, Redis and the registry; ``ok`` is false if any of them fails."""

    def database():
        db.session.execute(text("SELECT 1"))

    def redis():
        redis_connection().ping()

    def registry():
        url = current_app.config["REGISTRY_URL"].rstrip("/") + "/healthz"
        requests.get(url, timeout=2).raise_for_status()

    checks = {"database": _timed(database), "redis": _timed(redis), "registry": _timed(registry)}
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}
