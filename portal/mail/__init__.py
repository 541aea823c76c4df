"""Outgoing mail: backends that deliver, templates that render, tokens for rating links.

Like ``registry/`` and ``scans/``, this is a part that services use: the notification service
(run by a job, which stays thin: DESIGN §4) builds the context and calls

    message = compose_notification("case_opened", user.locale, context, to=address,
                                   message_id=make_message_id(row.id, "portal.example"))
    mail_backend(current_app).send(message)   # MailDeliveryError(transient=…) on failure

Nothing here touches the database or reads the clock for a decision. See ``backends``,
``render`` and ``tokens`` for the details.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from .backends import (
    DEFAULT_SENDER,
    FolderBackend,
    MailBackend,
    MailDeliveryError,
    MailMessage,
    MailNotFound,
    SmtpBackend,
    StoredMail,
    backend_from_url,
)
from .render import (
    CUSTOMER_KINDS,
    ESSENTIAL_KINDS,
    KINDS,
    LOCALES,
    NON_ESSENTIAL_KINDS,
    OPTIONAL_CONTEXT,
    REQUIRED_CONTEXT,
    STAFF_KINDS,
    NotificationRenderError,
    RenderedMail,
    compose_notification,
    format_mail_time,
    mail_locale,
    make_message_id,
    render_notification,
)
from .tokens import (
    RATING_LINK_MAX_AGE,
    RatingTokenError,
    RatingTokenExpired,
    RatingTokenInvalid,
    make_rating_token,
    new_nonce,
    read_rating_token,
)

__all__ = [
    "CUSTOMER_KINDS",
    "DEFAULT_SENDER",
    "ESSENTIAL_KINDS",
    "KINDS",
    "LOCALES",
    "NON_ESSENTIAL_KINDS",
    "OPTIONAL_CONTEXT",
    "RATING_LINK_MAX_AGE",
    "REQUIRED_CONTEXT",
    "STAFF_KINDS",
    "FolderBackend",
    "MailBackend",
    "MailDeliveryError",
    "MailMessage",
    "MailNotFound",
    "NotificationRenderError",
    "RatingTokenError",
    "RatingTokenExpired",
    "RatingTokenInvalid",
    "RenderedMail",
    "SmtpBackend",
    "StoredMail",
    "backend_from_url",
    "compose_notification",
    "default_mail_folder",
    "format_mail_time",
    "mail_backend",
    "mail_locale",
    "make_message_id",
    "make_rating_token",
    "new_nonce",
    "read_rating_token",
    "render_notification",
]


def default_mail_folder(app: Flask) -> Path:
    """Where mail goes when ``MAIL_URL`` is unset: ``<instance folder>/mail``."""
    return Path(app.instance_path) / "mail"


def mail_backend(app: Flask) -> MailBackend:
    """The backend the app's ``MAIL_URL`` describes (a folder under the instance path if unset).

    ``MAIL_FROM``, if the app has it, is the ``From`` of every mail. Built on each call: it is
    cheap, holds no connection, and follows configuration changes made in tests.
    """
    return backend_from_url(
        app.config.get("MAIL_URL"),
        default_mail_folder(app),
        sender=app.config.get("MAIL_FROM") or DEFAULT_SENDER,
    )
