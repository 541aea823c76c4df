"""Sign-in throttling: failed passwords and codes counted per account and source, in Redis.

The account is the normalised e-mail (``accounts.login_name``, the same normalisation sign-in
uses, so ``" User@X"`` and ``user@x`` are one account). Each account has one Redis hash holding
a counter per source address and one for every source together; the rules that turn counts into
a wait are ``portal.domain.throttle``. A browser that signed in to the account carries a signed
"known browser" cookie and is not held back by the account-wide soft limit; a password reset by
mail forgets the account's counts.

Redis unreachable: nothing is counted and nobody waits (the per-IP rate limit on the routes
still applies); how Flask-Limiter behaves then is configured elsewhere.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

from ..domain.throttle import FailureCount, SignInPolicy, sign_in_wait

KNOWN_BROWSER_COOKIE = "portal_known"
_KNOWN_SALT = "portal.known-browser.v1"
_KNOWN_MAX_ACCOUNTS = 5
_clock = time.time  # tests move time by replacing this


def _try_redis(call, default):
    """``call`` with Redis, or ``default`` at once when it is slow or away (logged)."""
    from ..queue import try_redis

    return try_redis("sign-in throttle", call, default)


def account_id(login_name: str) -> str:
    """A stable, non-reversible name for the account in Redis keys and cookies."""
    return hashlib.sha256(login_name.encode()).hexdigest()[:32]


def _key(account: str) -> str:
    return f"portal:signin:{account}"


def policy() -> SignInPolicy:
    config = current_app.config
    return SignInPolicy(
        threshold=config["LOGIN_FAILURES_BEFORE_LOCK"],
        base_seconds=float(config["LOGIN_DELAY_SECONDS"]),
        cap_seconds=float(config["LOGIN_DELAY_MAX_SECONDS"]),
        soft_limit=config["LOGIN_ACCOUNT_SOFT_LIMIT"],
        soft_delay_seconds=float(config["LOGIN_ACCOUNT_SOFT_DELAY_SECONDS"]),
    )


def _count(values: dict, prefix: str) -> FailureCount:
    try:
        return FailureCount(int(values.get(f"{prefix}:n", 0)), float(values.get(f"{prefix}:t", 0)))
    except ValueError:
        return FailureCount()


def wait_seconds(account: str, source: str, known_browser: bool) -> int:
    """Whole seconds this source must wait before trying this account again (0: go ahead)."""
    raw = _try_redis(lambda redis: redis.hgetall(_key(account)), None)
    if raw is None:
        return 0
    values = {k.decode(): v.decode() for k, v in raw.items()}
    wait = sign_in_wait(
        _count(values, f"src:{source}"),
        _count(values, "all"),
        known_browser=known_browser,
        now=_clock(),
        policy=policy(),
    )
    return math.ceil(wait)


def note_failure(account: str, source: str) -> None:
    """Count a failed password or code from ``source`` against ``account``."""
    now = str(_clock())
    key = _key(account)
    window = current_app.config["LOGIN_FAILURE_WINDOW_SECONDS"]

    def count(redis) -> None:
        pipe = redis.pipeline()
        pipe.hincrby(key, f"src:{source}:n", 1)
        pipe.hset(key, f"src:{source}:t", now)
        pipe.hincrby(key, "all:n", 1)
        pipe.hset(key, "all:t", now)
        pipe.expire(key, window)
        pipe.execute()

    _try_redis(count, None)


def clear_source(account: str, source: str) -> None:
    """A successful sign-in forgets this source's failures (not the account-wide count)."""
    _try_redis(lambda redis: redis.hdel(_key(account), f"src:{source}:n", f"src:{source}:t"), 0)


def clear_account(account: str) -> None:
    """The owner proved they hold the mailbox (password reset): forget every count."""
    _try_redis(lambda redis: redis.delete(_key(account)), 0)


# ------------------------------------------------------------------- known browsers


def _known_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_KNOWN_SALT)


def known_accounts(cookie: str | None) -> list[str]:
    """The accounts a browser's signed cookie says it signed in to (none if unsigned/old)."""
    if not cookie:
        return []
    max_age = current_app.config["KNOWN_BROWSER_DAYS"] * 86400
    try:
        value = _known_serializer().loads(cookie, max_age=max_age)
    except (BadData, UnicodeError, TypeError):
        return []
    if not isinstance(value, list):
        return []
    return [a for a in value if isinstance(a, str)][:_KNOWN_MAX_ACCOUNTS]


def known_cookie_with(cookie: str | None, account: str) -> str:
    """The cookie value once this browser has signed in to ``account`` too."""
    accounts = [a for a in known_accounts(cookie) if a != account]
    return _known_serializer().dumps([account, *accounts][:_KNOWN_MAX_ACCOUNTS])
