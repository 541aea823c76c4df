"""People who sign in: customers and staff, and the API tokens of machine clients."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow


class Role(StrEnum):
    """What a user may do. Staff roles are ordered: each includes the one before."""

    CUSTOMER = "customer"
    REVIEWER = "reviewer"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


STAFF_ROLES = (Role.REVIEWER, Role.SUPERVISOR, Role.ADMIN)


def new_session_token() -> str:
    """A fresh random token; changing it logs the user out everywhere."""
    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.CUSTOMER)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    locale: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(default=True)
    # False: send only the mail that must be read (see portal.mail NON_ESSENTIAL_KINDS).
    optional_mail: Mapped[bool] = mapped_column(default=True)
    # The TOTP secret once two-step sign-in is set up (required for admins), encrypted with
    # TOTP_ENCRYPTION_KEY (portal/support/crypto.py): a Fernet token, never the base32 secret.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    # The 30-second time step of the last code accepted: a code is good once per user.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # When the customer opened the link mailed to this address; until then nothing attached
    # to the address (staff-opened cases, buyer invitations) becomes theirs.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Flask-Login keeps this in the session cookie instead of the primary key, so that a new
    # token (password reset, disabling, "log out everywhere") ends every existing session.
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    api_tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    def get_id(self) -> str:
        return self.session_token

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users at login and load
        return self.active

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def has_role(self, role: Role) -> bool:
        """True when this user's role is ``role`` or a staff role above it."""
        if self.role == Role.CUSTOMER or role == Role.CUSTOMER:
            return self.role == role
        return STAFF_ROLES.index(Role(self.role)) >= STAFF_ROLES.index(role)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


def hash_api_token(token: str) -> str:
    """Tokens are stored as SHA-256: they are long and random, so a slow hash buys nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(db.Model):
    """A bearer token for a machine client (the billing system, the company's app)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="api_tokens")
