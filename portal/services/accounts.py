"""Accounts: customer self-registration, sign-in checks, staff creation, API tokens."""

from __future__ import annotations

import gzip
import hashlib
import secrets
from functools import cache
from importlib import resources

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import ApiToken, Role, User, hash_api_token, new_session_token, utcnow
from . import audit
from .errors import ServiceError


@cache
def _common_passwords() -> frozenset[str]:
    data = resources.files("portal.data").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def normalise_email(raw: str) -> str:
    """A syntactically valid e-mail address, lower-cased; raise ServiceError otherwise."""
    try:
        result = validate_email((raw or "").strip(), check_deliverability=False)
    except EmailNotValidError:
        raise ServiceError(_l("Enter a valid e-mail address."), field="email") from None
    return result.normalized.lower()


def check_password_policy(password: str, email: str | None = None) -> None:
    """Refuse short, common or e-mail-derived passwords with a message saying why."""
    min_length = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(password or "") < min_length:
        raise ServiceError(_l("Use at least %(n)d characters.", n=min_length), field="password")
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) <= 2:
        raise ServiceError(
            _l("This password is too common; choose one that is harder to guess."),
            field="password",
        )
    if email and lowered.startswith(email.split("@")[0].lower()):
        raise ServiceError(_l("The password must not contain your e-mail name."), field="password")


def hash_password(password: str) -> str:
    """Hash with the configured method (scrypt in production)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def find_user_by_email(email: str) -> User | None:
    """The user with this e-mail (case-insensitive), or None."""
    return db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))


def register_customer(email: str, password: str, locale: str | None = None) -> User:
    """Create a customer account; raise ServiceError for a bad or taken e-mail or weak password."""
    email = normalise_email(email)
    check_password_policy(password, email)
    if find_user_by_email(email) is not None:
        raise ServiceError(
            _l("An account with this e-mail already exists. Sign in instead."), field="email"
        )
    user = User(
        email=email, password_hash=hash_password(password), role=Role.CUSTOMER, locale=locale
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.registered", "user", user.id, after={"email": email, "role": user.role}, actor=user
    )
    db.session.commit()
    return user


# A real hash to compare against when the e-mail is unknown, so that the time a failed sign-in
# takes does not reveal whether the account exists.
_DUMMY_HASH: dict[str, str] = {}


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (without saying which part was wrong)."""
    try:
        email = normalise_email(email)
    except ServiceError:
        return None
    user = find_user_by_email(email)
    if user is None:
        method = current_app.config["PASSWORD_HASH_METHOD"]
        dummy = _DUMMY_HASH.setdefault(method, generate_password_hash("x" * 16, method=method))
        check_password_hash(dummy, password or "")
        return None
    if not check_password_hash(user.password_hash, password or "") or not user.active:
        return None
    return user


def user_by_session_token(token: str) -> User | None:
    """The active user whose sessions carry this token."""
    user = db.session.scalar(select(User).where(User.session_token == token))
    return user if user is not None and user.active else None


def record_login(user: User) -> None:
    """Note a successful sign-in (time and audit row)."""
    user.last_login_at = utcnow()
    audit.record("user.login", "user", user.id, actor=user)
    db.session.commit()


def create_user(email: str, password: str, role: str, display_name: str = "", actor=None) -> User:
    """Create any kind of user (staff accounts come only through here, from the CLI)."""
    email = normalise_email(email)
    try:
        role = Role(role)
    except ValueError:
        raise ServiceError(_l("Unknown role."), field="role") from None
    check_password_policy(password, email)
    if find_user_by_email(email) is not None:
        raise ServiceError(_l("An account with this e-mail already exists."), field="email")
    user = User(
        email=email, password_hash=hash_password(password), role=role, display_name=display_name
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.created", "user", user.id, after={"email": email, "role": role}, actor=actor or "cli"
    )
    db.session.commit()
    return user


def end_all_sessions(user: User) -> None:
    """Log the user out everywhere by rotating the token their session cookies carry."""
    user.session_token = new_session_token()


def set_locale(user: User, locale: str) -> None:
    """Remember a signed-in user's language."""
    user.locale = locale
    db.session.commit()


def issue_api_token(user: User, name: str) -> str:
    """Create an API token for ``user`` and return it; only its hash is stored."""
    token = "irp_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, name=name, token_hash=hash_api_token(token)))
    audit.record("api_token.issued", "user", user.id, after={"name": name}, actor="cli")
    db.session.commit()
    return token


def user_for_api_token(token: str) -> User | None:
    """The active user behind a bearer token, or None for an unknown or revoked token."""
    if not token:
        return None
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_api_token(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    return row.user


def staff_users() -> list[User]:
    """Every non-customer account, by e-mail."""
    return db.session.scalars(
        select(User).where(User.role != Role.CUSTOMER).order_by(User.email)
    ).all()


def update_user(admin: User, user: User, role: str, active: bool, password: str = "") -> None:
    """An admin changes a user's role, disables or enables them, or resets their password.

    Disabling or resetting the password ends every session the user has. Commits.
    """
    if not admin.has_role(Role.ADMIN):
        raise ServiceError(_l("Only admins manage users."))
    try:
        role = Role(role)
    except ValueError:
        raise ServiceError(_l("Unknown role."), field="role") from None
    if user.id == admin.id and (not active or role != Role.ADMIN):
        raise ServiceError(_l("You cannot disable or demote yourself."), field="role")
    before = {"role": user.role, "active": user.active}
    user.role = role
    if password:
        check_password_policy(password, user.email)
        user.password_hash = hash_password(password)
    if (user.active and not active) or password:
        end_all_sessions(user)
    user.active = active
    audit.record(
        "user.updated",
        "user",
        user.id,
        before=before,
        after={"role": role, "active": active, "password_reset": bool(password)},
        actor=admin,
    )
    db.session.commit()


def _lock_key(email: str) -> str:
    return "portal:login-failures:" + hashlib.sha256(email.lower().encode()).hexdigest()[:32]


def login_locked(email: str) -> bool:
    """True while an account (known or not: no hint either way) is locked after failures."""
    from ..queue import redis_connection

    try:
        failures = int(redis_connection().get(_lock_key(email)) or 0)
    except Exception:  # Redis down: the per-IP limit still applies
        return False
    return failures >= current_app.config["LOGIN_FAILURES_BEFORE_LOCK"]


def note_login_failure(email: str) -> None:
    """Count a failed sign-in for this e-mail; the count expires after the lock period."""
    from ..queue import redis_connection

    try:
        pipe = redis_connection().pipeline()
        key = _lock_key(email)
        pipe.incr(key)
        pipe.expire(key, current_app.config["LOGIN_LOCK_MINUTES"] * 60)
        pipe.execute()
    except Exception:
        current_app.logger.warning("login failure counter unavailable", exc_info=True)


def clear_login_failures(email: str) -> None:
    """A successful sign-in forgets earlier failures."""
    from ..queue import redis_connection

    try:
        redis_connection().delete(_lock_key(email))
    except Exception:
        current_app.logger.warning("login failure counter unavailable", exc_info=True)


def sign_out_everywhere(user: User) -> None:
    """Sign-out ends the session on the server: the token every cookie carries is replaced."""
    end_all_sessions(user)
    audit.record("user.logout", "user", user.id, actor=user)
    db.session.commit()


def needs_second_factor(user: User) -> bool:
    """Admins must use a one-time code; other staff may choose to."""
    return bool(user.totp_secret) or user.role == Role.ADMIN


def new_totp_secret() -> str:
    """A fresh secret for an authenticator app."""
    import pyotp

    return pyotp.random_base32()


def totp_uri(user: User, secret: str) -> str:
    """The otpauth:// link an authenticator app scans."""
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="发票补录服务平台")


def check_totp(secret: str | None, code: str) -> bool:
    """True when ``code`` is the current one-time code (a step either side allowed)."""
    import pyotp

    code = "".join(ch for ch in (code or "") if ch.isdigit())
    return bool(secret) and len(code) == 6 and pyotp.TOTP(secret).verify(code, valid_window=1)


def enable_totp(user: User, secret: str, code: str) -> None:
    """Turn on two-factor sign-in after the user proved their app shows the right code."""
    if not check_totp(secret, code):
        raise ServiceError(
            _l("That code is not right. Check the time on your phone."), field="code"
        )
    user.totp_secret = secret
    audit.record("user.totp_enabled", "user", user.id, actor=user)
    db.session.commit()


def set_optional_mail(user: User, wanted: bool) -> None:
    """Whether the user gets mail that repeats what the portal shows (see NON_ESSENTIAL_KINDS)."""
    before = {"optional_mail": user.optional_mail}
    user.optional_mail = wanted
    audit.record(
        "user.preferences",
        "user",
        user.id,
        before=before,
        after={"optional_mail": wanted},
        actor=user,
    )
    db.session.commit()
