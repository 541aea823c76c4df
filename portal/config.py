"""Settings, read from the environment when the app is created (never at import time).

One class per environment; ``create_app`` picks one by name or takes a mapping of overrides.
Every limit the portal enforces (upload size, rates, lookups per day) is a setting here.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import ClassVar


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    return int(value) if value is not None else default


def _env_float(name: str, default: float) -> float:
    value = _env(name)
    return float(value) if value is not None else default


_NUMERIC_SETTINGS = (
    "REGISTRY_CONNECT_TIMEOUT",
    "REGISTRY_READ_TIMEOUT",
    "REGISTRY_BATCH_SIZE",
    "REGISTRY_RATE_LIMIT",
    "REGISTRY_BACKOFF_BASE",
    "REGISTRY_BACKOFF_CAP",
    "REGISTRY_MAX_ATTEMPTS",
    "REGISTRY_LEASE_SECONDS",
    "BREAKER_FAILURE_THRESHOLD",
    "BREAKER_COOLDOWN_SECONDS",
    "OUTBOX_SWEEP_INTERVAL",
    "OUTBOX_ENQUEUE_GRACE",
    "OUTBOX_DISPATCH_LIMIT",
    "LOOKUPS_PER_INVOICE_PER_DAY",
    "SLA_FIRST_RESPONSE_HOURS",
    "SLA_RESOLUTION_DAYS",
    "PAGE_SIZE",
    "EXPORT_MAX_ROWS",
    "SLA_AT_RISK_HOURS",
    "UPLOAD_QUOTA_BYTES",
    "SCAN_MAX_BYTES",
    "RECONCILE_INTERVAL",
    "EVIDENCE_RETENTION_MONTHS",
    "SESSION_IDLE_MINUTES",
    "SESSION_ABSOLUTE_HOURS",
    "LOGIN_FAILURES_BEFORE_LOCK",
    "MONITOR_INTERVAL",
    "MONITOR_STUCK_MINUTES",
    "MONITOR_WINDOW_MINUTES",
    "MONITOR_FAILURE_RATE",
    "MONITOR_MIN_ATTEMPTS",
    "MONITOR_BACKLOG_MAX",
    "MONITOR_HEARTBEAT_SECONDS",
    "S3_CONNECT_TIMEOUT",
    "S3_READ_TIMEOUT",
)

# Evidence storage (README "Deployment"): read as strings from the environment.
_STORAGE_SETTINGS = (
    "EVIDENCE_STORAGE",
    "S3_BUCKET",
    "S3_PREFIX",
    "S3_ENDPOINT_URL",
    "S3_REGION",
    "S3_ADDRESSING_STYLE",
)

_RATE_LIMIT_SETTINGS = (
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_LOGIN",
    "RATELIMIT_REGISTER",
    "RATELIMIT_LOOKUP_IP",
    "RATELIMIT_LOOKUP_USER",
    "RATELIMIT_CASE_CREATE",
    "RATELIMIT_UPLOAD",
    "RATELIMIT_EVIDENCE_READ",  # issue 18
)


# Security block (issue 16): integer settings read under their own names.
_SECURITY_NUMBERS = (
    "LOGIN_DELAY_SECONDS",
    "LOGIN_DELAY_MAX_SECONDS",
    "LOGIN_FAILURE_WINDOW_SECONDS",
    "LOGIN_ACCOUNT_SOFT_LIMIT",
    "LOGIN_ACCOUNT_SOFT_DELAY_SECONDS",
    "KNOWN_BROWSER_DAYS",
    "PASSWORD_RESET_MAX_AGE",
    "EMAIL_VERIFY_MAX_AGE",
    "TRUSTED_PROXIES",
)


class BaseConfig:
    """Defaults shared by every environment. Subclasses override; ``load`` reads the environment."""

    ENV_NAME = "base"
    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI = "sqlite:///portal.db"
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_pre_ping": True}
    REDIS_URL = "redis://127.0.0.1:6379/0"
    REGISTRY_URL = "http://127.0.0.1:8100"
    UPLOAD_DIR = "uploads"
    MAIL_URL: str | None = None
    MAIL_FROM: str | None = None
    PUBLIC_URL = "http://127.0.0.1:8000"  # how links in mail reach the portal
    METRICS_TOKEN: str | None = None  # if set, /metrics wants "Authorization: Bearer <token>"

    # Evidence storage. "local": files under UPLOAD_DIR, readable by one host only (make run).
    # "s3": an S3-compatible bucket every web and worker host reads; credentials come from
    # boto3's usual sources (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an instance role).
    EVIDENCE_STORAGE = "local"
    S3_BUCKET: str | None = None
    S3_PREFIX = "evidence/"  # objects are S3_PREFIX + the storage key
    S3_ENDPOINT_URL: str | None = None  # unset for AWS; the service's URL for OSS, COS, MinIO…
    S3_REGION: str | None = None
    S3_ADDRESSING_STYLE = "auto"  # "path" for MinIO and most self-hosted services
    S3_CONNECT_TIMEOUT = 3.05
    S3_READ_TIMEOUT = 30.0

    # Babel: Chinese first, English second; times shown in Beijing time.
    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ("zh_CN", "en")

    # Session and cookies.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    REMEMBER_COOKIE_DURATION = timedelta(days=14)
    PERMANENT_SESSION_LIFETIME = timedelta(hours=8)
    SESSION_IDLE_MINUTES = 60  # signed out after this long without a request
    SESSION_ABSOLUTE_HOURS = 12  # and after this long in any case
    WTF_CSRF_TIME_LIMIT = 3600 * 8

    # Limits.
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024 + 64 * 1024  # one 20 MB file plus the form around it
    UPLOAD_QUOTA_BYTES = 200 * 1024 * 1024  # per customer, all their evidence together
    SCAN_MAX_BYTES = 20 * 1024 * 1024  # one evidence file (the request limit is a bit larger)
    EVIDENCE_RETENTION_MONTHS = 24  # evidence of closed cases is purged after this
    RATELIMIT_DATA_EXPORT = "5 per hour"
    PASSWORD_MIN_LENGTH = 10
    PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 - a hash method name, not a password
    RATELIMIT_LOGIN = "10 per minute;100 per hour"
    RATELIMIT_REGISTER = "5 per minute;30 per hour"
    RATELIMIT_STORAGE_URI: str | None = None  # defaults to REDIS_URL
    # X-RateLimit-* headers would cost two Redis reads on every limited request; a 429 carries
    # Retry-After (portal/errors.py) without them.
    RATELIMIT_HEADERS_ENABLED = False

    # Customer self-service.
    # Keep the signed-out lookup form rendered once per language (portal/sharedpages.py).
    SHARED_PAGE_CACHE = True
    LOOKUPS_PER_INVOICE_PER_DAY = 5  # as the national verification platform allows
    RATELIMIT_LOOKUP_IP = "30 per minute;300 per hour"
    RATELIMIT_LOOKUP_USER = "60 per hour"
    RATELIMIT_CASE_CREATE = "10 per hour"
    RATELIMIT_UPLOAD = "30 per hour"
    # Issue 18: POST /api/v1/evidence:read, per token (a read can cost an OCR pass, ~1 s of CPU).
    RATELIMIT_EVIDENCE_READ = "20 per minute;500 per day"
    SLA_FIRST_RESPONSE_HOURS = 4  # business hours (default for every channel and priority)
    SLA_RESOLUTION_DAYS = 2  # business days
    # Per "channel" or "channel:priority": {"first_response_hours": h, "resolution_days": d}.
    # Set SLA_POLICY in the environment as JSON to change it without a release.
    SLA_POLICY: ClassVar[dict] = {
        "counter": {"first_response_hours": 2, "resolution_days": 1},
        "web:urgent": {"first_response_hours": 2, "resolution_days": 1},
        "counter:urgent": {"first_response_hours": 1, "resolution_days": 1},
        "phone:urgent": {"first_response_hours": 2, "resolution_days": 1},
        "email:urgent": {"first_response_hours": 2, "resolution_days": 1},
    }
    PAGE_SIZE = 25
    SELLER_TAX_ID = "911101017967003199"  # the company's own taxpayer ID (the seller)
    FOUR_EYES_AMOUNT = "100000.00"  # approvals with a larger total need a second supervisor
    SLA_AT_RISK_HOURS = 4  # a case due within this many hours is "at risk"
    EXPORT_MAX_ROWS = 50000

    # Registry delivery (outbox). See README "Registry delivery" for what each one does.
    REGISTRY_CONNECT_TIMEOUT = 3.05
    REGISTRY_READ_TIMEOUT = 10.0
    REGISTRY_BATCH_SIZE = 100  # invoices per registry request when draining a backlog
    REGISTRY_RATE_LIMIT = 50  # registry requests per second, shared by all workers; 0 = no cap
    REGISTRY_BACKOFF_BASE = 30.0
    REGISTRY_BACKOFF_CAP = 3600.0
    REGISTRY_MAX_ATTEMPTS = 12
    REGISTRY_LEASE_SECONDS = 60  # an in-flight row not finished by then is taken back
    BREAKER_FAILURE_THRESHOLD = 5  # consecutive failed requests that open the breaker
    BREAKER_COOLDOWN_SECONDS = 30.0  # how long the breaker stays open before a probe
    OUTBOX_SWEEP_INTERVAL = 5.0  # seconds between sweeps (run as RQ jobs by the workers)
    OUTBOX_ENQUEUE_GRACE = 15  # seconds a dispatched row may wait before its job is checked
    OUTBOX_DISPATCH_LIMIT = 20000  # rows one sweep may dispatch
    RECONCILE_INTERVAL = 900.0  # seconds between scheduled reconciliation runs
    MONITOR_INTERVAL = 60.0  # seconds between monitor runs (alerts, SLA warnings)
    MONITOR_STUCK_MINUTES = 10  # a delivery overdue this long is "stuck"
    MONITOR_WINDOW_MINUTES = 15  # failure rate window
    MONITOR_FAILURE_RATE = 0.5  # alert above this share of failed attempts
    MONITOR_MIN_ATTEMPTS = 20  # ...once the window has at least this many attempts
    MONITOR_BACKLOG_MAX = 5000  # alert above this many deliveries waiting
    MONITOR_HEARTBEAT_SECONDS = 120  # a worker silent this long is missing

    # ---- Security (issue 16): sign-in, two-step codes, links, proxies ----------------------
    # One block so that it can be ported as a whole; README's configuration table has each row.
    # Failed sign-ins per account *and* source address before the first delay; each further
    # failure doubles the delay, up to LOGIN_DELAY_MAX_SECONDS. Forgotten after a quiet window.
    LOGIN_FAILURES_BEFORE_LOCK = 5
    LOGIN_DELAY_SECONDS = 60
    LOGIN_DELAY_MAX_SECONDS = 3600
    LOGIN_FAILURE_WINDOW_SECONDS = 86400
    # Failures per account from every source together: above this, browsers that never signed
    # in to the account wait LOGIN_ACCOUNT_SOFT_DELAY_SECONDS between tries (a soft limit: the
    # owner's own browser, and anyone who resets the password by mail, is not held back).
    LOGIN_ACCOUNT_SOFT_LIMIT = 50
    LOGIN_ACCOUNT_SOFT_DELAY_SECONDS = 30
    KNOWN_BROWSER_DAYS = 90  # how long a browser that signed in counts as the owner's
    PASSWORD_RESET_MAX_AGE = 3600  # seconds a password reset link stays valid
    EMAIL_VERIFY_MAX_AGE = 7 * 86400  # seconds an e-mail verification link stays valid
    RATELIMIT_PASSWORD_RESET = "5 per hour"  # noqa: S105 - a rate, not a password
    # Fernet key(s) for TOTP secrets at rest, comma-separated, the first one encrypting
    # (`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`).
    # Required in production; elsewhere derived from SECRET_KEY when unset.
    TOTP_ENCRYPTION_KEY: str | None = None
    # How many reverse proxies in front of the portal set X-Forwarded-For/-Proto (werkzeug's
    # ProxyFix); 0 = none: the headers are ignored and the peer address is the client's.
    TRUSTED_PROXIES = 0
    # ---- end of the security block -----------------------------------------------------------

    @classmethod
    def load(cls) -> dict:
        """Return this class's settings with the environment applied on top."""
        settings = {k: getattr(cls, k) for k in dir(cls) if k.isupper()}
        settings["SECRET_KEY"] = _env("SECRET_KEY", settings["SECRET_KEY"])
        settings["SQLALCHEMY_DATABASE_URI"] = _normalise_db_url(
            _env("DATABASE_URL", settings["SQLALCHEMY_DATABASE_URI"])
        )
        settings["REDIS_URL"] = _env("REDIS_URL", settings["REDIS_URL"])
        settings["REGISTRY_URL"] = _env("REGISTRY_URL", settings["REGISTRY_URL"])
        settings["UPLOAD_DIR"] = _env("UPLOAD_DIR", settings["UPLOAD_DIR"])
        settings["MAIL_URL"] = _env("MAIL_URL", settings["MAIL_URL"])
        settings["MAIL_FROM"] = _env("MAIL_FROM", settings["MAIL_FROM"])
        settings["PUBLIC_URL"] = _env("PUBLIC_URL", settings["PUBLIC_URL"])
        settings["METRICS_TOKEN"] = _env("METRICS_TOKEN", settings["METRICS_TOKEN"])
        # Security block (issue 16).
        settings["TOTP_ENCRYPTION_KEY"] = _env("TOTP_ENCRYPTION_KEY", None)
        for name in _SECURITY_NUMBERS:
            settings[name] = _env_int(name, settings[name])
        settings["RATELIMIT_PASSWORD_RESET"] = _env(
            "RATELIMIT_PASSWORD_RESET", settings["RATELIMIT_PASSWORD_RESET"]
        )
        if settings["MAIL_URL"] is None and _env("MAIL_SERVER"):
            settings["MAIL_URL"] = f"smtp://{_env('MAIL_SERVER')}:{_env_int('MAIL_PORT', 25)}"
        settings["SELLER_TAX_ID"] = _env("SELLER_TAX_ID", settings["SELLER_TAX_ID"])
        if _env("SLA_POLICY"):
            import json

            settings["SLA_POLICY"] = json.loads(_env("SLA_POLICY"))
        settings["FOUR_EYES_AMOUNT"] = _env("FOUR_EYES_AMOUNT", settings["FOUR_EYES_AMOUNT"])
        settings["MAX_CONTENT_LENGTH"] = _env_int(
            "MAX_UPLOAD_BYTES", settings["MAX_CONTENT_LENGTH"]
        )
        for name in _STORAGE_SETTINGS:
            settings[name] = _env(name, settings[name])
        _check_storage(settings)
        # Rate limits ("30 per minute;300 per hour") and their storage, likewise.
        for name in _RATE_LIMIT_SETTINGS:
            settings[name] = _env(name, settings[name])
        # Every numeric limit can be tuned from the environment under its own name.
        for name in _NUMERIC_SETTINGS:
            default = settings[name]
            reader = _env_float if isinstance(default, float) else _env_int
            settings[name] = reader(name, default)
        return settings


class DevelopmentConfig(BaseConfig):
    """`make run`: SQLite file, local Redis, the registry simulator."""

    ENV_NAME = "development"
    SQLALCHEMY_DATABASE_URI = "sqlite:///portal.db"
    SHARED_PAGE_CACHE = False  # templates are being edited: render every page afresh


class TestingConfig(BaseConfig):
    """The test suite: fast password hashing, in-memory rate limits unless a test opts in."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-only-secret-key"  # noqa: S105 - never used outside tests
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # noqa: S105 - fast hashing for tests only
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_ENABLED = True

    @classmethod
    def load(cls) -> dict:
        settings = super().load()
        # Tests choose their own database and Redis; never the developer's.
        settings["SQLALCHEMY_DATABASE_URI"] = _normalise_db_url(
            _env("TEST_DATABASE_URL", cls.SQLALCHEMY_DATABASE_URI)
        )
        settings["REDIS_URL"] = _env("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
        return settings


class ProductionConfig(BaseConfig):
    """Behind a TLS-terminating load balancer; everything secret comes from the environment."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"

    @classmethod
    def load(cls) -> dict:
        settings = super().load()
        if not settings["SECRET_KEY"]:
            raise RuntimeError("SECRET_KEY must be set in the environment for production")
        if _env("DATABASE_URL") is None:
            raise RuntimeError("DATABASE_URL must be set in the environment for production")
        # Security block (issue 16): links in mail name the real site, never a default or the
        # Host header; TOTP secrets are encrypted with a key of their own.
        public_url = _env("PUBLIC_URL")
        if public_url is None or not public_url.startswith(("https://", "http://")):
            raise RuntimeError(
                "PUBLIC_URL must be set in the environment for production (https://host)"
            )
        key = settings["TOTP_ENCRYPTION_KEY"]
        if not key:
            raise RuntimeError("TOTP_ENCRYPTION_KEY must be set in the environment for production")
        if key == settings["SECRET_KEY"]:
            raise RuntimeError("TOTP_ENCRYPTION_KEY must not be the SECRET_KEY")
        return settings


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def _check_storage(settings: dict) -> None:
    # A typo here would otherwise show up only at the first upload.
    from .scans.storage import BACKENDS

    backend = settings["EVIDENCE_STORAGE"]
    if backend not in BACKENDS:
        raise RuntimeError(f"EVIDENCE_STORAGE={backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "s3" and not settings["S3_BUCKET"]:
        raise RuntimeError("EVIDENCE_STORAGE=s3 needs S3_BUCKET")


def _normalise_db_url(url: str) -> str:
    # Heroku-style URLs say postgres://, which SQLAlchemy 2 no longer accepts.
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


def load_config(name: str | None) -> dict:
    """Settings for the named environment (``PORTAL_ENV`` when no name is given)."""
    name = name or _env("PORTAL_ENV", "development")
    try:
        return CONFIGS[name].load()
    except KeyError:
        choices = ", ".join(sorted(CONFIGS))
        raise RuntimeError(f"unknown PORTAL_ENV {name!r}; choose one of {choices}") from None
