"""Bearer-token authentication for the API."""

from __future__ import annotations

import re
from functools import wraps

from flask import g, jsonify, request

from ..models import Role, hash_api_token
from ..services import accounts


def api_error(status: int, title: str, **extra):
    """A JSON error body the same shape everywhere: ``{"error": {"status", "title", ...}}``."""
    return jsonify(error={"status": status, "title": title, **extra}), status


def token_required(role: Role | None = None):
    """Require ``Authorization: Bearer <token>``; with ``role``, that role or above."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            token = bearer_token(request.headers.get("Authorization"))
            user = accounts.user_for_api_token(token) if token else None
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


# RFC 6750 §2.1: "Bearer" (any case), one or more spaces, one b64token, nothing else.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None for anything else
    (another scheme, no token, two tokens, stray characters): those are all a 401."""
    match = _BEARER.fullmatch(header or "")
    return match.group(1) if match else None


def token_key() -> str:
    """Rate-limit key: the token's identity (the SHA-256 it is stored under), however the header
    was written; requests without a well-formed token share their address's bucket. (Limits run
    before authentication, which they protect.)"""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        return "api-anonymous:" + (request.remote_addr or "")
    return "api-token:" + hash_api_token(token)


def api_locale() -> str:
    """Messages in English when the client asks for it, else Chinese."""
    best = request.accept_languages.best_match(["zh_CN", "zh", "en"], default="zh_CN")
    return "en" if best == "en" else "zh_CN"
