"""Getting a finished message out of the door: over SMTP, or into a folder staff can read.

A backend knows nothing about notifications, templates or the database. It takes one
``MailMessage`` and either delivers it or raises ``MailDeliveryError`` saying whether trying
again later could help (``transient``) or not. The notification job decides what to do with that:
retry with backoff, or give up and show the row to staff.

Public API:

- ``MailMessage``: what to send (recipients, subject, plain text, optional HTML, extra headers).
- ``MailBackend``: the protocol every backend follows: ``send(message) -> None``.
- ``MailDeliveryError``: raised by ``send``; ``transient`` says whether a retry may succeed.
- ``SmtpBackend``: delivery over SMTP, SMTP with STARTTLS, or SMTPS (implicit TLS).
- ``FolderBackend``: each message written atomically as an ``.eml`` file (``make run``);
  ``list_messages``/``read_message`` serve the staff mail viewer.
- ``StoredMail``: one message read back from a ``FolderBackend``.
- ``MailNotFound``: ``read_message`` was given a name that is not a stored message.
- ``backend_from_url(url, default_path)``: the backend that ``MAIL_URL`` describes.

Every name is importable from here; each lives in the module that does its one job:
``message`` (the message, the protocol, the error), ``smtp`` and ``folder`` (delivery),
``mailbox`` (the staff mail viewer reading the folder back). This module chooses the backend.
"""

from __future__ import annotations

import os
import ssl
from urllib.parse import parse_qs, unquote, urlsplit

from .folder import FolderBackend
from .mailbox import MailNotFound, StoredMail
from .message import DEFAULT_SENDER, MailBackend, MailDeliveryError, MailMessage
from .smtp import DEFAULT_TIMEOUT, SmtpBackend

__all__ = [
    "DEFAULT_SENDER",
    "DEFAULT_TIMEOUT",
    "FolderBackend",
    "MailBackend",
    "MailDeliveryError",
    "MailMessage",
    "MailNotFound",
    "SmtpBackend",
    "StoredMail",
    "backend_from_url",
]

_SMTP_SCHEMES = {
    "smtp": ("none", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("ssl", 465),
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def backend_from_url(
    url: str | None,
    default_path: str | os.PathLike[str],
    *,
    sender: str = DEFAULT_SENDER,
    ssl_context: ssl.SSLContext | None = None,
) -> MailBackend:
    """The backend ``MAIL_URL`` describes; a ``FolderBackend`` at ``default_path`` when unset.

    - ``smtp://host[:25]``: plain SMTP (a local relay). ``?starttls=1`` upgrades with STARTTLS.
    - ``smtp+starttls://user:pass@host[:587]``: STARTTLS, required, then AUTH.
    - ``smtps://user:pass@host[:465]``: TLS from the first byte, then AUTH.
    - ``file:///absolute/folder`` or ``file://relative/folder`` (``file://instance/mail``,
      relative to the working directory): write ``.eml`` files instead of sending.

    ``?timeout=SECONDS`` sets the SMTP timeout (default 10). User name and password are
    percent-decoded (write ``@`` as ``%40``). Anything else is refused with ``ValueError`` so
    that a typo fails at start-up, not at the first notification.
    """
    if url is None or not url.strip():
        return FolderBackend(default_path, sender=sender)
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query, keep_blank_values=True)
    if scheme == "file":
        if query:
            raise ValueError("MAIL_URL file:// takes no options")
        # RFC 8089: file:///abs and file://localhost/abs are absolute. file://instance/mail, the
        # form README uses, reads naturally as a relative path, so a host part starts the path.
        if parts.netloc in ("", "localhost"):
            path = unquote(parts.path)
        else:
            path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError("MAIL_URL file:// needs a folder")
        return FolderBackend(path, sender=sender)
    if scheme not in _SMTP_SCHEMES:
        raise ValueError(f"MAIL_URL scheme {scheme!r} not supported: use smtp, smtps or file")
    security, default_port = _SMTP_SCHEMES[scheme]
    if not parts.hostname:
        raise ValueError("MAIL_URL needs a host name")
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError("MAIL_URL has an invalid port") from None
    timeout = DEFAULT_TIMEOUT
    for key, values in query.items():
        value = values[-1].strip().lower()
        if key == "starttls":
            if value not in _TRUE | _FALSE:
                raise ValueError(f"MAIL_URL starttls={value!r}: use 1 or 0")
            if value in _TRUE:
                if security == "ssl":
                    raise ValueError("MAIL_URL smtps:// is already TLS; drop starttls")
                security = "starttls"
        elif key == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                raise ValueError(f"MAIL_URL timeout={value!r} is not a number") from None
            if timeout <= 0:
                raise ValueError("MAIL_URL timeout must be positive")
        else:
            raise ValueError(f"MAIL_URL option {key!r} not known: use starttls or timeout")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None and password is None:
        raise ValueError("MAIL_URL has a user name but no password")
    return SmtpBackend(
        parts.hostname,
        port,
        username,
        password,
        security=security,
        timeout=timeout,
        sender=sender,
        ssl_context=ssl_context,
    )
