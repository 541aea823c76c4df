"""Bearer-token authentication for the API."""

from __future__ import annotations

from functools import wraps

from flask import g, jsonify, request

from ..models import Role
from ..services import accounts


def api_error(status: int, title: str, **extra):
    """A JSON error body the same shape everywhere: ``{"error": {"status", "title", ...}}``."""
    return jsonify(error={"status": status, "title": title, **extra}), status


def token_required(role: Role | None = None):
    """Require ``Authorization: Bearer <token>``; with ``role``, that role or above."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            user = (
                accounts.user_for_api_token(token.strip()) if scheme.lower() == "bearer" else None
            )
            if user is None:
                response = api_error(401, "A valid API token is required.")
                response[0].headers["WWW-Authenticate"] = 'Bearer realm="api"'
                return response
            if role is not None and not user.has_role(role):
                return api_error(403, "This token may not do that.")
            g.api_user = user
            return view(*args, **kwargs)

        return wrapped

    return decorator


def token_key() -> str:
    """Rate-limit key per token (limits run before authentication, so hash the header)."""
    import hashlib

    header = request.headers.get("Authorization", "")
    return "api:" + hashlib.sha256(header.encode()).hexdigest()[:24]


def api_locale() -> str:
    """Messages in English when the client asks for it, else Chinese."""
    best = request.accept_languages.best_match(["zh_CN", "zh", "en"], default="zh_CN")
    return "en" if best == "en" else "zh_CN"
