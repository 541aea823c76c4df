"""Flask's signed-cookie sessions, with the signing work that repeats done once."""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import Serializer, TimestampSigner, URLSafeTimedSerializer, want_bytes
from itsdangerous.encoding import base64_encode

# Below this many bytes of JSON, a signed value is never compressed (see CompactSerializer).
COMPRESS_MIN = 256


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


class CompactSerializer(URLSafeTimedSerializer):
    """itsdangerous' URL-safe timed serializer, signing with ``KeyCachingSigner`` and trying
    compression only on payloads of ``COMPRESS_MIN`` bytes or more.

    itsdangerous zlib-compresses every payload and keeps the result if it is shorter. Setting
    up a compressor costs more than the whole signature of a short value, and a short value
    (a CSRF token, a first visit's session) gains a few bytes at most. The output is what
    itsdangerous writes for an uncompressed payload, so any ``URLSafeTimedSerializer`` with the
    same key and salt reads it, and this one reads theirs.
    """

    default_signer = KeyCachingSigner

    def dump_payload(self, obj) -> bytes:
        json = Serializer.dump_payload(self, obj)  # the JSON, before the URL-safe mixin's work
        if len(json) < COMPRESS_MIN:
            return base64_encode(json)
        return super().dump_payload(obj)


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
        if not app.secret_key:
            return None
        # As Flask builds it (SecureCookieSessionInterface.get_signing_serializer): the current
        # key last, after the fallbacks.
        keys = [*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key]
        return CompactSerializer(
            keys,
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )
