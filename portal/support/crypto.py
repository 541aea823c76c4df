"""Secrets at rest: the TOTP secrets of two-step sign-in, encrypted with Fernet (``cryptography``).

The key comes from ``TOTP_ENCRYPTION_KEY`` (one or more Fernet keys, comma-separated: the first
encrypts, every one decrypts, so a key can be rotated with ``flask users rotate-totp-key``).
Production refuses to start without it (``ProductionConfig``). In development and tests, when
it is unset, a key is derived from ``SECRET_KEY`` with HKDF, so that ``make run`` needs nothing.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, current_app

_DERIVATION_INFO = b"portal.totp-secrets.v1"


class SecretUnreadable(Exception):
    """A stored secret that none of the configured keys decrypts (wrong or missing key)."""


def _derived_key(secret_key: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVATION_INFO).derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(raw)


def _cipher(app: Flask) -> MultiFernet:
    configured = app.config.get("TOTP_ENCRYPTION_KEY")
    if configured:
        keys = [k.strip().encode() for k in configured.split(",") if k.strip()]
    else:
        keys = [_derived_key(app.config["SECRET_KEY"])]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError):
        raise RuntimeError(
            "TOTP_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), "
            "comma-separated"
        ) from None


def init_app(app: Flask) -> None:
    """Check the key at start-up, so a bad setting fails the deploy, not a sign-in."""
    app.extensions["portal.totp_cipher"] = _cipher(app)


def _current() -> MultiFernet:
    return current_app.extensions["portal.totp_cipher"]


def encrypt_secret(secret: str) -> str:
    """The stored form of a TOTP secret (a Fernet token, ASCII)."""
    return _current().encrypt(secret.encode()).decode()


def decrypt_secret(stored: str) -> str:
    """The TOTP secret behind a stored token; ``SecretUnreadable`` if no key opens it."""
    try:
        return _current().decrypt(stored.encode()).decode()
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable("the stored TOTP secret cannot be decrypted") from None


def rotate_secret(stored: str) -> str:
    """The same secret encrypted with the first (newest) key."""
    try:
        return _current().rotate(stored.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("the stored TOTP secret cannot be decrypted") from None


def is_encrypted(stored: str | None) -> bool:
    """True for a Fernet token (what we store); False for a plain base32 secret of old."""
    return bool(stored) and stored.startswith("gAAAAA")
