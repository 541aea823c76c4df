"""Flask's signed-cookie sessions, with the signing serializer built once per key set."""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class CookieSessionInterface(SecureCookieSessionInterface):
    """The same cookies as Flask's default, signed by a serializer kept between requests.

    Flask builds the serializer twice per request (to open the session and to save it), and
    itsdangerous test-serializes an empty value each time one is built: on the signed-out lookup
    page that was a tenth of the request's time. The serializer holds no per-request state; it is
    rebuilt whenever the secret key or its fallbacks change.
    """

    def __init__(self) -> None:
        self._serializer: tuple[tuple, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept = self._serializer
        if kept is None or kept[0] != keys:
            kept = self._serializer = (keys, super().get_signing_serializer(app))
        return kept[1]
