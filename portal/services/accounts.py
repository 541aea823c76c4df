"""Accounts: customer self-registration, sign-in checks, staff creation, API tokens."""

from __future__ import annotations

import gzip
import secrets
from functools import cache
from importlib import resources

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, or_, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import ApiToken, Role, User, hash_api_token, new_session_token, utcnow
from ..support import crypto
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


def login_name(raw: str | None) -> str:
    """The account a sign-in form names: the normalised e-mail (``normalise_email``), or, for
    text that is no e-mail address at all, that text trimmed and lower-cased. Sign-in, the
    failure counters and password resets all name accounts through this one function."""
    try:
        return normalise_email(raw or "")
    except ServiceError:
        return " ".join((raw or "").split()).lower()


def register_customer(email: str, password: str, locale: str | None = None) -> User | None:
    """Create an unverified customer account and mail it the verification link; for an address
    that has an account already, create nothing and mail "you already have an account".

    The caller answers both the same way (nothing on the page says whether the address had an
    account); both cost one password hash. Raises ServiceError for a bad e-mail or a weak
    password. Returns the new user, or None when the address was taken. Commits.
    """
    from . import account_links

    email = normalise_email(email)
    check_password_policy(password, email)
    password_hash = hash_password(password)  # in both cases, so both take as long
    existing = find_user_by_email(email)
    if existing is not None:
        account_links.mail_account_exists(existing)
        audit.record("user.registration_repeated", "user", existing.id, actor="anonymous")
        db.session.commit()
        return None
    user = User(email=email, password_hash=password_hash, role=Role.CUSTOMER, locale=locale)
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.registered", "user", user.id, after={"email": email, "role": user.role}, actor=user
    )
    account_links.mail_verification(user)
    db.session.commit()
    return user


def init_app(app) -> None:
    """Compute the hash compared with when a sign-in names no account, once per process and
    with the configured method, so that an unknown e-mail costs exactly one hash like a known
    one (creating it anew on each unknown e-mail doubled its cost and told which existed)."""
    method = app.config["PASSWORD_HASH_METHOD"]
    app.extensions["portal.dummy_password_hash"] = generate_password_hash(
        secrets.token_urlsafe(16), method=method
    )


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (without saying which part was wrong).

    Exactly one password hash is checked whatever the outcome, so the time taken does not tell
    whether the account exists.
    """
    name = login_name(email)
    user = find_user_by_email(name)
    if user is None:
        check_password_hash(current_app.extensions["portal.dummy_password_hash"], password or "")
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


# The user with the token's revocation, in one statement: every API request asks this, and
# needs no more of the token. Built once (as the lookup's statements are), not again with its
# cache key for each request (bench/lookup_instructions.py --target api: 6.87 → 6.30 M).
_USER_FOR_TOKEN = (
    select(User, ApiToken.revoked_at)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def user_for_api_token(token: str) -> User | None:
    """The active user behind a bearer token, or None for an unknown or revoked token."""
    if not token:
        return None
    row = db.session.execute(_USER_FOR_TOKEN, {"token_hash": hash_api_token(token)}).first()
    if row is None or row.revoked_at is not None or not row.User.active:
        return None
    return row.User


def user_by_id(user_id) -> User | None:
    """Any account by its id (text or int), or None."""
    from ..support.ids import parse_id

    parsed = parse_id(user_id)
    return db.session.get(User, parsed) if parsed else None


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


def totp_step(secret: str | None, code: str | None, now: float | None = None) -> int | None:
    """The 30-second time step whose code ``code`` is (one step either side of now allowed),
    or None when it is no current code of ``secret``."""
    import time

    import pyotp
    from pyotp.utils import strings_equal

    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if not secret or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if now is None else now
    current = totp.timecode(_utc(now))
    for step in (current, current - 1, current + 1):
        if strings_equal(code, totp.generate_otp(step)):
            return step
    return None


def _utc(seconds: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)


def _spend_step(user: User, step: int) -> bool:
    """Record ``step`` as the user's last code, unless it (or a later one) was used already:
    one conditional UPDATE, so two requests racing with the same code cannot both win."""
    spent = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    db.session.refresh(user)
    return bool(spent)


def check_second_factor(user: User, code: str | None) -> bool:
    """True when ``code`` is the user's current one-time code and has not been used before
    (a code seen once, in any session, is refused afterwards). Commits."""
    if not user.totp_secret:
        return False
    try:
        secret = crypto.decrypt_secret(user.totp_secret)
    except crypto.SecretUnreadable:
        # A wrong or missing TOTP_ENCRYPTION_KEY: refuse (never fall back), and say why.
        current_app.logger.error("the TOTP secret of user %s cannot be decrypted", user.id)
        return False
    step = totp_step(secret, code)
    return step is not None and _spend_step(user, step)


def enable_totp(user: User, secret: str, code: str, current_code: str | None = None) -> None:
    """Turn on two-step sign-in with ``secret`` once the user's app shows its code.

    Only while none is set up: replacing a secret needs the code of the current one (or an
    admin's audited reset, ``reset_totp``). Raises ServiceError naming the field. Commits.
    """
    replacing = bool(user.totp_secret)
    if replacing and not check_second_factor(user, current_code):
        raise ServiceError(
            _l("Enter the code your current app shows to replace it."), field="current_code"
        )
    step = totp_step(secret, code)
    if step is None:
        raise ServiceError(
            _l("That code is not right. Check the time on your phone."), field="code"
        )
    user.totp_secret = crypto.encrypt_secret(secret)
    user.totp_last_step = step  # the code just shown cannot sign in again
    audit.record(
        "user.totp_replaced" if replacing else "user.totp_enabled", "user", user.id, actor=user
    )
    db.session.commit()


def reset_totp(admin: User, user: User) -> None:
    """An admin clears another user's two-step sign-in (a lost phone); the user sets up a new
    one at their next sign-in. Ends the user's sessions; audited. Commits."""
    if not admin.has_role(Role.ADMIN):
        raise ServiceError(_l("Only admins manage users."))
    if admin.id == user.id:
        raise ServiceError(_l("Another admin must reset your own two-step sign-in."))
    if not user.totp_secret:
        raise ServiceError(_l("This user has no two-step sign-in to reset."))
    user.totp_secret = None
    user.totp_last_step = None
    end_all_sessions(user)
    audit.record(
        "user.totp_reset",
        "user",
        user.id,
        before={"totp": True},
        after={"totp": False},
        actor=admin,
    )
    db.session.commit()


def rotate_totp_secrets() -> int:
    """Re-encrypt every stored TOTP secret with the newest TOTP_ENCRYPTION_KEY. Commits."""
    users = db.session.scalars(select(User).where(User.totp_secret.is_not(None))).all()
    for user in users:
        user.totp_secret = crypto.rotate_secret(user.totp_secret)
    db.session.commit()
    return len(users)


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
