"""Settings, read from the environment when the app is created (never at import time).

Every setting the environment can change is one row of ``SETTINGS``: the variable, its type,
its default and, where a value can be wrong, the check it must pass. ``load_config`` reads them
all with `environs` and refuses to start, naming every bad variable, when one does not parse or
fails its check (an empty variable counts as unset). Adding a setting is adding a row.

The classes hold what no variable changes (Babel, cookies, hashing) and, per environment, the
rows that differ (``SETTINGS`` of a subclass replaces the row of the same config key).
``create_app`` picks an environment by name or takes a mapping of overrides (tests).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, ClassVar
from urllib.parse import urlsplit

from environs import Env, EnvError
from marshmallow import ValidationError
from marshmallow.validate import OneOf, Range

MB = 1024 * 1024
REQUIRED = object()  # a default meaning: the environment must set this one


class ConfigError(RuntimeError):
    """A setting from the environment is missing or invalid; the message names each variable."""


# ------------------------------------------------------------------------------ checks


def _positive(value: float) -> None:
    if value <= 0:
        raise ValidationError("Must be greater than 0.")


_AT_LEAST_0 = Range(min=0)
_AT_LEAST_1 = Range(min=1)


def _schemes(*schemes: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            raise ValidationError(f"Must be a URL starting with {' or '.join(schemes)}://.")

    return check


def _database_url(value: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(_normalise_db_url(value))
    except ArgumentError:
        raise ValidationError("Not a database URL (sqlite:///file.db, postgresql://…).") from None


def _rate_limits(value: str) -> None:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValidationError('Not a rate limit ("10 per minute;100 per hour").') from None


def _money(value: Decimal) -> None:
    if not value.is_finite() or value < 0:
        raise ValidationError("Must be an amount of at least 0.")


def _taxpayer_id(value: str) -> None:
    from .domain.taxid import is_valid_taxpayer_id

    if not is_valid_taxpayer_id(value):
        raise ValidationError("Not a valid taxpayer ID.")


def _storage_backend(value: str) -> None:
    from .scans.storage import BACKENDS

    if value not in BACKENDS:
        raise ValidationError(f"Must be one of {', '.join(BACKENDS)}.")


def _sla_policy(value: object) -> None:
    names = {"first_response_hours", "resolution_days"}
    if not isinstance(value, dict) or not all(
        isinstance(entry, dict)
        and set(entry) <= names
        and all(isinstance(n, int | float) and n > 0 for n in entry.values())
        for entry in value.values()
    ):
        raise ValidationError(
            'Must be JSON like {"counter": {"first_response_hours": 2, "resolution_days": 1}}.'
        )


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, type, default, config key (if not the name), check."""

    name: str
    type: type
    default: Any
    key: str | None = None
    check: Callable[[Any], None] | None = None

    @property
    def config_key(self) -> str:
        return self.key or self.name


S = Setting
_MAIL = _schemes("smtp", "smtp+starttls", "smtps", "file")
_HTTP = _schemes("http", "https")
_REDIS = _schemes("redis", "rediss", "unix")
_LIMITS = _schemes("redis", "rediss", "unix", "memory", "memcached", "mongodb")

# Every row is documented in README's configuration table. Add new ones in this block.
SETTINGS: tuple[Setting, ...] = (
    # Where things are.
    S("SECRET_KEY", str, None),
    S("DATABASE_URL", str, "sqlite:///portal.db", "SQLALCHEMY_DATABASE_URI", _database_url),
    S("REDIS_URL", str, "redis://127.0.0.1:6379/0", check=_REDIS),
    S("RATELIMIT_STORAGE_URI", str, None, check=_LIMITS),  # None: REDIS_URL
    # Every Redis client (queues, limits, breaker, counters): a hung Redis costs one timeout,
    # then callers that can do without it skip it for REDIS_RETRY_AFTER (portal/queue.py).
    S("REDIS_CONNECT_TIMEOUT", float, 0.25, check=_positive),
    S("REDIS_SOCKET_TIMEOUT", float, 0.3, check=_positive),
    S("REDIS_RETRY_AFTER", float, 5.0, check=_positive),
    # PostgreSQL: seconds a statement may run, a request may wait for a pooled connection, a
    # connection may take to open (0: no statement timeout). SQLite waits on its busy timeout.
    S("DATABASE_STATEMENT_TIMEOUT", float, 30.0, check=_AT_LEAST_0),
    S("DATABASE_POOL_TIMEOUT", float, 5.0, check=_positive),
    S("DATABASE_CONNECT_TIMEOUT", int, 5, check=Range(2, 600)),
    S("REGISTRY_URL", str, "http://127.0.0.1:8100", check=_HTTP),
    S("UPLOAD_DIR", str, "uploads"),
    # Evidence storage (README "Deployment"): "local", files under UPLOAD_DIR for one host (make
    # run); "s3", an S3-compatible bucket every web and worker host reads, credentials from
    # boto3's usual sources (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an instance role).
    S("EVIDENCE_STORAGE", str, "local", check=_storage_backend),
    S("S3_BUCKET", str, None),
    S("S3_PREFIX", str, "evidence/"),  # objects are S3_PREFIX + the storage key
    S("S3_ENDPOINT_URL", str, None, check=_HTTP),  # unset for AWS; OSS, COS, MinIO… their URL
    S("S3_REGION", str, None),
    S("S3_ADDRESSING_STYLE", str, "auto", check=OneOf(("auto", "path", "virtual"))),
    S("S3_CONNECT_TIMEOUT", float, 3.05, check=_positive),
    S("S3_READ_TIMEOUT", float, 30.0, check=_positive),
    S("BACKUP_DIR", str, None),  # None: instance/backups
    S("PG_BINDIR", str, None),  # pg_dump/pg_restore, when not on PATH
    S("HOLIDAYS_DIR", str, None),  # extra <year>.json holiday arrangements (portal/data/holidays)
    S("MAIL_URL", str, None, check=_MAIL),
    S("MAIL_SERVER", str, None),  # MAIL_URL smtp://MAIL_SERVER:MAIL_PORT when MAIL_URL is unset
    S("MAIL_PORT", int, 25, check=Range(1, 65535)),
    S("MAIL_FROM", str, None),
    S("PUBLIC_URL", str, "http://127.0.0.1:8000", check=_HTTP),  # how links in mail reach us
    # The company's own contact channels on the help centre's contact page (each shown if set).
    S("SUPPORT_PHONE", str, ""),
    S("SUPPORT_EMAIL", str, ""),
    S("SUPPORT_COUNTER", str, ""),
    S("METRICS_TOKEN", str, None),  # if set, /metrics wants "Authorization: Bearer <token>"
    S("PORT", int, 8000, check=Range(1, 65535)),  # make run's web port
    S("SELLER_TAX_ID", str, "911101017967003199", check=_taxpayer_id),  # the company's own
    S("FOUR_EYES_AMOUNT", Decimal, Decimal("100000.00"), check=_money),
    # Limits.
    S("MAX_UPLOAD_BYTES", int, 20 * MB + 64 * 1024, "MAX_CONTENT_LENGTH", _AT_LEAST_1),
    S("UPLOAD_QUOTA_BYTES", int, 200 * MB, check=_AT_LEAST_1),  # per customer, all evidence
    S("EVIDENCE_RETENTION_MONTHS", int, 24, check=_AT_LEAST_0),
    S("PAGE_SIZE", int, 25, check=Range(1, 500)),
    S("EXPORT_MAX_ROWS", int, 50000, check=_AT_LEAST_1),
    # Sign-in and sessions.
    S("SESSION_IDLE_MINUTES", int, 60, check=_AT_LEAST_1),
    S("SESSION_ABSOLUTE_HOURS", int, 12, check=_AT_LEAST_1),
    # Failed sign-ins per account *and* source address before the first delay; each further
    # failure doubles it up to LOGIN_DELAY_MAX_SECONDS; counts are forgotten after a quiet window.
    S("LOGIN_FAILURES_BEFORE_LOCK", int, 5, check=_AT_LEAST_1),
    S("LOGIN_DELAY_SECONDS", int, 60, check=_AT_LEAST_1),
    S("LOGIN_DELAY_MAX_SECONDS", int, 3600, check=_AT_LEAST_1),
    S("LOGIN_FAILURE_WINDOW_SECONDS", int, 86400, check=_AT_LEAST_1),
    # Failures per account from every source together above which browsers that never signed in
    # to it wait between tries (the owner's own browser is not held back).
    S("LOGIN_ACCOUNT_SOFT_LIMIT", int, 50, check=_AT_LEAST_1),
    S("LOGIN_ACCOUNT_SOFT_DELAY_SECONDS", int, 30, check=_AT_LEAST_0),
    S("KNOWN_BROWSER_DAYS", int, 90, check=_AT_LEAST_1),  # a browser that signed in: the owner's
    S("PASSWORD_RESET_MAX_AGE", int, 3600, check=_AT_LEAST_1),  # seconds a reset link works
    S("EMAIL_VERIFY_MAX_AGE", int, 7 * 86400, check=_AT_LEAST_1),  # and a verification link
    # Fernet key(s) for two-step secrets at rest, comma-separated, the first one encrypting;
    # required in production, elsewhere derived from SECRET_KEY when unset
    # (portal/support/crypto.py).
    S("TOTP_ENCRYPTION_KEY", str, None),
    # Reverse proxies in front of the portal that set X-Forwarded-For/-Proto (ProxyFix); 0: none.
    S("TRUSTED_PROXIES", int, 0, check=Range(0, 10)),
    # Flask-Limiter rates ("N per minute;M per hour"), each on its own routes.
    S("RATELIMIT_LOGIN", str, "10 per minute;100 per hour", check=_rate_limits),
    S("RATELIMIT_REGISTER", str, "5 per minute;30 per hour", check=_rate_limits),
    S("RATELIMIT_LOOKUP_IP", str, "30 per minute;300 per hour", check=_rate_limits),
    S("RATELIMIT_LOOKUP_USER", str, "60 per hour", check=_rate_limits),
    # Reports accepted from one customer (counted in the database: corrections cost nothing),
    # and every report attempt, corrections included (generous: against scripts only).
    S("RATELIMIT_CASE_CREATE", str, "10 per hour", check=_rate_limits),
    S("RATELIMIT_CASE_ATTEMPTS", str, "60 per hour", check=_rate_limits),
    S("RATELIMIT_UPLOAD", str, "30 per hour", check=_rate_limits),
    S("RATELIMIT_DATA_EXPORT", str, "5 per hour", check=_rate_limits),
    S("RATELIMIT_PASSWORD_RESET", str, "5 per hour", check=_rate_limits),
    # POST /api/v1/evidence:read, per token (a read can cost an OCR pass, about 1 s of CPU).
    S("RATELIMIT_EVIDENCE_READ", str, "20 per minute;500 per day", check=_rate_limits),
    S("LOOKUPS_PER_INVOICE_PER_DAY", int, 5, check=_AT_LEAST_1),  # as the national platform
    # SLA (business time: portal/services/sla.py).
    S("SLA_FIRST_RESPONSE_HOURS", int, 4, check=_AT_LEAST_1),
    S("SLA_RESOLUTION_DAYS", int, 2, check=_AT_LEAST_1),
    S("SLA_AT_RISK_HOURS", int, 4, check=_AT_LEAST_0),
    # Per "channel" or "channel:priority": {"first_response_hours": h, "resolution_days": d}.
    S(
        "SLA_POLICY",
        dict,
        {
            "counter": {"first_response_hours": 2, "resolution_days": 1},
            "web:urgent": {"first_response_hours": 2, "resolution_days": 1},
            "counter:urgent": {"first_response_hours": 1, "resolution_days": 1},
            "phone:urgent": {"first_response_hours": 2, "resolution_days": 1},
            "email:urgent": {"first_response_hours": 2, "resolution_days": 1},
        },
        check=_sla_policy,
    ),
    # Registry delivery (outbox): README "Registry delivery".
    S("REGISTRY_CONNECT_TIMEOUT", float, 3.05, check=_positive),
    S("REGISTRY_READ_TIMEOUT", float, 10.0, check=_positive),
    S("REGISTRY_BATCH_SIZE", int, 100, check=Range(1, 100)),  # the batch endpoint's maximum
    S("REGISTRY_RATE_LIMIT", int, 50, check=_AT_LEAST_0),  # requests/s, all workers; 0 = no cap
    S("REGISTRY_BACKOFF_BASE", float, 30.0, check=_positive),
    S("REGISTRY_BACKOFF_CAP", float, 3600.0, check=_positive),
    S("REGISTRY_MAX_ATTEMPTS", int, 12, check=_AT_LEAST_1),
    S("REGISTRY_LEASE_SECONDS", int, 60, check=_AT_LEAST_1),  # an in-flight row taken back after
    S("BREAKER_FAILURE_THRESHOLD", int, 5, check=_AT_LEAST_1),
    S("BREAKER_COOLDOWN_SECONDS", float, 30.0, check=_positive),
    # Successful requests in a row after a failure that count as the registry being well again
    # (as does a probe closing the breaker): retries the trouble scheduled are then brought
    # forward (portal/services/outbox.py, recover).
    S("BREAKER_RECOVERY_SUCCESSES", int, 20, check=_AT_LEAST_1),
    S("OUTBOX_SWEEP_INTERVAL", float, 5.0, check=_positive),
    S("OUTBOX_ENQUEUE_GRACE", int, 15, check=_AT_LEAST_0),
    S("OUTBOX_DISPATCH_LIMIT", int, 20000, check=_AT_LEAST_1),  # rows one sweep may dispatch
    # Reconciliation (portal/services/reconcile.py).
    S("RECONCILE_INTERVAL", float, 900.0, check=_positive),  # between scheduled runs
    S("RECONCILE_FULL_EVERY", int, 86400, check=_AT_LEAST_1),  # seconds between full runs
    S("RECONCILE_PAGE_SIZE", int, 1000, check=Range(1, 1000)),  # the listing's maximum
    S("RECONCILE_LEASE_SECONDS", int, 120, check=_AT_LEAST_1),
    S("RECONCILE_CLOCK_SKEW_SECONDS", int, 120, check=_AT_LEAST_0),
    S("RECONCILE_MAX_RESUMES", int, 5, check=_AT_LEAST_0),
    S("RECONCILE_RESUME_WITHIN", int, 86400, check=_AT_LEAST_1),
    S("RECONCILE_CHUNK", int, 1000, check=_AT_LEAST_1),
    # Monitors (portal/services/monitoring.py).
    S("MONITOR_INTERVAL", float, 60.0, check=_positive),
    S("MONITOR_STUCK_MINUTES", int, 10, check=_AT_LEAST_1),
    S("MONITOR_WINDOW_MINUTES", int, 15, check=_AT_LEAST_1),
    S("MONITOR_FAILURE_RATE", float, 0.5, check=Range(0, 1)),
    S("MONITOR_MIN_ATTEMPTS", int, 20, check=_AT_LEAST_1),
    S("MONITOR_BACKLOG_MAX", int, 5000, check=_AT_LEAST_0),
    S("MONITOR_HEARTBEAT_SECONDS", int, 120, check=_AT_LEAST_1),
)


@cache
def all_settings() -> tuple[Setting, ...]:
    """``SETTINGS`` and, for evidence reading, ``SCAN_<FIELD>`` for every field of
    ``ScanLimits`` with the field's type and default (imported here: ``portal.scans`` pulls in
    the image libraries, which importing the package must not)."""
    from .scans.limits import ScanLimits

    scans = tuple(
        S(f"SCAN_{field.name.upper()}", type(field.default), field.default, check=_scan_check)
        for field in fields(ScanLimits)
    )
    return SETTINGS + scans


def _scan_check(value: object) -> None:
    if isinstance(value, int) and value < 1:
        raise ValidationError("Must be greater than or equal to 1.")


class BaseConfig:
    """What no environment variable changes, shared by every environment."""

    ENV_NAME = "base"
    SETTINGS: ClassVar[tuple[Setting, ...]] = ()
    # No pool_pre_ping: it cost a round trip to the database on every request. A connection the
    # server dropped fails the one request that meets it, and SQLAlchemy then discards the
    # whole pool (disconnect detection); pool_recycle retires connections before the idle
    # timeouts of servers and firewalls (hours) can close them under us.
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_recycle": 1800}

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
    WTF_CSRF_TIME_LIMIT = 3600 * 8
    PASSWORD_MIN_LENGTH = 10
    PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 - a hash method name, not a password
    # X-RateLimit-* headers would cost two Redis reads on every limited request; a 429 carries
    # Retry-After (portal/web/errors.py) without them.
    RATELIMIT_HEADERS_ENABLED = False
    # Redis slow or away: limits are kept in this process (in_memory_fallback) and an error
    # racing the switch is logged, not raised (no 500 from a limit check).
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True
    # Pages the same for every signed-out visitor, kept whole in each worker process
    # (portal/web/pages.py); re-rendered at least every five minutes.
    CACHE_TYPE = "SimpleCache"
    CACHE_DEFAULT_TIMEOUT = 300
    # Origins besides this host from which a browser may POST (portal/web/origin.py).
    TRUSTED_ORIGINS: ClassVar[tuple] = ()

    @classmethod
    def rows(cls) -> tuple[Setting, ...]:
        """``SETTINGS`` with this environment's rows in place of the base rows of their key."""
        own = {row.config_key: row for row in cls.SETTINGS}
        rows = [own.pop(row.config_key, row) for row in all_settings()]
        return (*rows, *own.values())

    @classmethod
    def load(cls) -> dict:
        """This class's constants with every setting read from the environment on top."""
        settings = {k: getattr(cls, k) for k in dir(cls) if k.isupper() and k != "SETTINGS"}
        settings.update(read_environment(cls.rows()))
        settings["SQLALCHEMY_DATABASE_URI"] = _normalise_db_url(settings["SQLALCHEMY_DATABASE_URI"])
        if settings["MAIL_URL"] is None and settings["MAIL_SERVER"]:
            settings["MAIL_URL"] = f"smtp://{settings['MAIL_SERVER']}:{settings['MAIL_PORT']}"
        cls.check(settings)
        return settings

    @classmethod
    def check(cls, settings: dict) -> None:
        """Refuse combinations of settings that no single row can check."""
        if settings["EVIDENCE_STORAGE"] == "s3" and not settings["S3_BUCKET"]:
            raise ConfigError(
                "invalid settings in the environment: EVIDENCE_STORAGE=s3 needs S3_BUCKET"
            )


class DevelopmentConfig(BaseConfig):
    """`make run`: SQLite file, local Redis, the registry simulator."""

    ENV_NAME = "development"
    CACHE_TYPE = "NullCache"  # templates are being edited: render every page afresh
    CACHE_NO_NULL_WARNING = True


class TestingConfig(BaseConfig):
    """The test suite: its own database and Redis, fast hashing, in-memory rate limits."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-only-secret-key"  # noqa: S105 - never used outside tests
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # noqa: S105 - fast hashing for tests only
    RATELIMIT_ENABLED = True
    SETTINGS = (
        S("SECRET_KEY", str, SECRET_KEY),
        # Tests choose their own database and Redis; never the developer's.
        S("TEST_DATABASE_URL", str, "sqlite://", "SQLALCHEMY_DATABASE_URI", _database_url),
        S("TEST_REDIS_URL", str, "redis://127.0.0.1:6379/13", "REDIS_URL", _REDIS),
        S("RATELIMIT_STORAGE_URI", str, "memory://", check=_LIMITS),
    )


class ProductionConfig(BaseConfig):
    """Behind a TLS-terminating load balancer; everything secret comes from the environment."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"
    SETTINGS = (
        S("SECRET_KEY", str, REQUIRED),
        S("DATABASE_URL", str, REQUIRED, "SQLALCHEMY_DATABASE_URI", _database_url),
        # Links in mail and invitations name the real site, never a default or a Host header.
        S("PUBLIC_URL", str, REQUIRED, check=_HTTP),
        S("TOTP_ENCRYPTION_KEY", str, REQUIRED),
    )

    @classmethod
    def check(cls, settings: dict) -> None:
        super().check(settings)
        if settings["TOTP_ENCRYPTION_KEY"] == settings["SECRET_KEY"]:
            raise ConfigError(
                "invalid settings in the environment: "
                "TOTP_ENCRYPTION_KEY must not be the SECRET_KEY"
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def engine_options(config: Mapping) -> dict:
    """SQLAlchemy engine options for the configured database: on PostgreSQL a pool timeout, a
    connect timeout and a statement timeout (``DATABASE_*``); elsewhere the base options."""
    options = dict(BaseConfig.SQLALCHEMY_ENGINE_OPTIONS)
    if not config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return options
    options["pool_timeout"] = config["DATABASE_POOL_TIMEOUT"]
    connect_args = {"connect_timeout": config["DATABASE_CONNECT_TIMEOUT"]}
    milliseconds = int(config["DATABASE_STATEMENT_TIMEOUT"] * 1000)
    if milliseconds:
        connect_args["options"] = f"-c statement_timeout={milliseconds}"
    options["connect_args"] = connect_args
    return options


def read_environment(rows: tuple[Setting, ...]) -> dict[str, Any]:
    """Each row's value from the environment (or its default), by config key.

    Raises ``ConfigError`` naming every variable that is invalid, or required and unset.
    """
    env = Env(eager=False, expand_vars=False)
    values: dict[str, Any] = {}
    for row in rows:
        raw = os.environ.get(row.name)
        if raw is None or raw == "":
            if row.default is REQUIRED:
                env.str(row.name)  # recorded as "not set"; reported by seal() below
            values[row.config_key] = None if row.default is REQUIRED else row.default
            continue
        values[row.config_key] = _reader(env, row)
    try:
        env.seal()
    except EnvError as error:
        problems = getattr(error, "error_messages", None) or {}
        lines = [f"{name}: {' '.join(map(str, why))}" for name, why in problems.items()]
        detail = "; ".join(lines) if lines else str(error)
        raise ConfigError(f"invalid settings in the environment: {detail}") from None
    return values


def _reader(env: Env, row: Setting) -> Any:
    validate = row.check
    if issubclass(row.type, Enum):
        return env.enum(row.name, row.default, enum=row.type, by_value=True, validate=validate)
    if row.type is bool:
        return env.bool(row.name, row.default, validate=validate)
    if row.type is int:
        return env.int(row.name, row.default, validate=validate)
    if row.type is float:
        return env.float(row.name, row.default, validate=validate)
    if row.type is Decimal:
        return env.decimal(row.name, row.default, validate=validate)
    if row.type is dict:
        return env.json(row.name, row.default, validate=validate)
    return env.str(row.name, row.default, validate=validate)


def _normalise_db_url(url: str | None) -> str | None:
    # Heroku-style URLs say postgres://, which SQLAlchemy 2 no longer accepts.
    if url and url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


def load_config(name: str | None) -> dict:
    """Settings for the named environment (``PORTAL_ENV`` when no name is given)."""
    name = name or os.environ.get("PORTAL_ENV") or "development"
    try:
        config = CONFIGS[name]
    except KeyError:
        choices = ", ".join(sorted(CONFIGS))
        raise ConfigError(f"unknown PORTAL_ENV {name!r}; choose one of {choices}") from None
    return config.load()
