"""Flask's signed-cookie sessions, with the signing work that repeats done once."""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import TimestampSigner, URLSafeTimedSerializer, want_bytes


class KeyCachingSigner(TimestampSigner):
    """itsdangerous' timestamp signer, deriving each (secret, salt) key once per process.

    The derived key is a pure function of the secret key, the salt and the derivation method;
    itsdangerous recomputes it (an HMAC) for every cookie it signs or checks.
    """

    _derived: dict[tuple, bytes] = {}  # noqa: RUF012 - shared on purpose: a process-wide memo

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        memo = (secret, self.salt, self.key_derivation, self.digest_method)
        key = self._derived.get(memo)
        if key is None:
            key = self._derived[memo] = super().derive_key(secret)
        return key


class CookieSessionInterface(SecureCookieSessionInterface):
    """The same cookies as Flask's default, signed by a serializer kept between requests.

    Flask builds the serializer twice per request (to open the session and to save it),
    itsdangerous test-serializes an empty value each time one is built, and each signature
    derives the key anew: on the signed-out lookup page that was a tenth of the request. The
    serializer holds no per-request state; it is rebuilt when the secret key or its fallbacks
    change.
    """

    def __init__(self) -> None:
        self._serializer: tuple[tuple, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept = self._serializer
        if kept is None or kept[0] != keys:
            kept = self._serializer = (keys, self._build(app))
        return kept[1]

    def _build(self, app: Flask) -> URLSafeTimedSerializer | None:
        serializer = super().get_signing_serializer(app)  # Flask's settings, kept as they are
        if serializer is not None:
            serializer.signer = KeyCachingSigner
        return serializer
