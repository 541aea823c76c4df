"""Signed links mailed to account holders: confirm the e-mail address, reset the password.

Both are ``itsdangerous`` tokens signed with ``SECRET_KEY`` under a salt of their own (so no
other signed value of ours reads as one), dated, and checked against a maximum age.

- Verification names the user and the address: it proves the person holds that mailbox. Only
  then does anything attached to the address become theirs (staff-opened cases waiting for it,
  buyer invitations, their data export's invitations).
- A password reset names the user and a fingerprint of their current password hash and session
  token: once the password changes (or the user is signed out everywhere), every older link is
  dead, so a link works once.

Every link is built from ``PUBLIC_URL`` (``notify.external_url``), never from the request.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from ..extensions import db
from ..models import User, utcnow
from . import audit, notify, throttle
from .errors import ServiceError

_VERIFY_SALT = "portal.verify-email.v1"
_RESET_SALT = "portal.password-reset.v1"


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _fingerprint(user: User) -> str:
    return hashlib.sha256(f"{user.password_hash}|{user.session_token}".encode()).hexdigest()[:32]


# --------------------------------------------------------------------- verification


def verification_token(user: User) -> str:
    """The token of the link that confirms ``user``'s current address."""
    return _serializer(_VERIFY_SALT).dumps([user.id, user.email])


def mail_verification(user: User) -> None:
    """Queue the "confirm your address" mail (after the caller's commit)."""
    notify.queue(
        "verify_email",
        user.email,
        user=user,
        context={
            "verify_url": notify.external_url("auth.verify_email", token=verification_token(user)),
            "valid_days": max(1, current_app.config["EMAIL_VERIFY_MAX_AGE"] // 86400),
        },
    )


def resend_verification(user: User) -> bool:
    """Mail the link again unless the address is confirmed already; True if mail was queued."""
    if user.email_verified_at is not None:
        return False
    mail_verification(user)
    db.session.commit()
    return True


def _user_from(token: str, salt: str, max_age: int) -> tuple[User, list]:
    try:
        payload = _serializer(salt).loads(token or "", max_age=max_age)
    except SignatureExpired:
        raise ServiceError(
            _l("This link has expired. Ask for a new one."), code="expired"
        ) from None
    except (BadData, UnicodeError, TypeError):
        raise ServiceError(_l("This link is not valid."), code="invalid") from None
    user = None
    if isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int):
        user = db.session.get(User, payload[0])
    if user is None or not user.active:
        raise ServiceError(_l("This link is not valid."), code="invalid")
    return user, payload


def user_for_verification(token: str) -> User:
    """The user a verification link is for; ServiceError when it is tampered, expired, or for
    an address the account no longer has."""
    user, payload = _user_from(token, _VERIFY_SALT, current_app.config["EMAIL_VERIFY_MAX_AGE"])
    if payload[1] != user.email:
        raise ServiceError(_l("This link is not valid."), code="invalid")
    return user


def verify_email(token: str, password: str) -> User:
    """Mark the address confirmed and attach what waited for it; confirming twice is harmless.

    The link proves the mailbox, the password proves the account: both are needed, so that the
    holder of an address someone else registered (with a password of their own) cannot, by
    opening the link, hand that person what waits for the address. (The holder takes such an
    account over with a password reset instead, which confirms the address too.) Raises
    ServiceError for a tampered, expired or outdated link, or a wrong password. Commits.
    """
    from werkzeug.security import check_password_hash

    user = user_for_verification(token)
    if not check_password_hash(user.password_hash, password or ""):
        raise ServiceError(
            _l("Enter the password of this account to confirm the address."),
            field="password",
            code="password",
        )
    if user.email_verified_at is None:
        _mark_verified(user)
    db.session.commit()
    return user


def _mark_verified(user: User) -> None:
    from .cases import attach_waiting_cases

    user.email_verified_at = utcnow()
    attached = attach_waiting_cases(user)
    audit.record(
        "user.email_verified",
        "user",
        user.id,
        after={"email": user.email, "cases_attached": attached},
        actor=user,
    )


# ------------------------------------------------------------------- password reset


def reset_token(user: User) -> str:
    """The token of a password reset link for ``user`` (dead once the password changes)."""
    return _serializer(_RESET_SALT).dumps([user.id, _fingerprint(user)])


def _mail_reset(user: User) -> None:
    notify.queue(
        "password_reset",
        user.email,
        user=user,
        context={
            "reset_url": notify.external_url("auth.reset_password", token=reset_token(user)),
            "valid_minutes": max(1, current_app.config["PASSWORD_RESET_MAX_AGE"] // 60),
        },
    )


def request_password_reset(email: str) -> None:
    """Mail a reset link if ``email`` names an active account; do nothing otherwise (the page
    says the same either way). Commits."""
    from .accounts import find_user_by_email, login_name

    user = find_user_by_email(login_name(email))
    if user is None or not user.active:
        return
    _mail_reset(user)
    audit.record("user.password_reset_requested", "user", user.id, actor="anonymous")
    db.session.commit()


def user_for_reset(token: str) -> User:
    """The user a reset link is for; ServiceError when it is tampered, expired or used."""
    user, payload = _user_from(token, _RESET_SALT, current_app.config["PASSWORD_RESET_MAX_AGE"])
    if payload[1] != _fingerprint(user):
        raise ServiceError(_l("This link has been used already. Ask for a new one."), code="used")
    return user


def reset_password(token: str, password: str) -> User:
    """Set a new password from a reset link: every session ends, every failed sign-in of the
    account is forgotten, and the address counts as confirmed (the link reached it). Commits."""
    from .accounts import check_password_policy, end_all_sessions, hash_password

    user = user_for_reset(token)
    check_password_policy(password, user.email)
    user.password_hash = hash_password(password)
    end_all_sessions(user)
    if user.email_verified_at is None:
        _mark_verified(user)
    throttle.clear_account(throttle.account_id(user.email))
    audit.record("user.password_reset", "user", user.id, actor=user)
    db.session.commit()
    return user


def mail_account_exists(user: User) -> None:
    """Someone registered with an address that has an account: tell its holder, by mail."""
    notify.queue(
        "account_exists",
        user.email,
        user=user,
        context={
            "signin_url": notify.external_url("auth.login"),
            "reset_url": notify.external_url("auth.forgot_password"),
        },
    )
