"""What a backend sends: ``MailMessage`` (recipients, subject, plain text, optional HTML, extra
headers, checked at construction), the ``MailBackend`` protocol every backend follows and
``MailDeliveryError``, which says whether trying again later could help (``transient``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from typing import Protocol, runtime_checkable

# The display name is encoded per RFC 2047 by the email package, so Chinese is safe here.
DEFAULT_SENDER = "发票补录服务平台 <noreply@localhost>"
# CRLF line ends, and 7-bit on the wire: Chinese bodies go base64 or quoted-printable rather
# than raw 8-bit, which a relay without 8BITMIME may mangle. Headers use RFC 2047 words.
_POLICY = policy.SMTP.clone(cte_type="7bit")

# Headers the message builds itself from the dataclass fields; letting ``headers`` set them too
# would produce duplicates that mail servers reject or, worse, interpret differently.
_RESERVED_HEADERS = frozenset(
    {"from", "sender", "to", "cc", "bcc", "subject"}
    | {"mime-version", "content-type", "content-transfer-encoding"}
)

_HEADER_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9-]*\Z")


class MailDeliveryError(Exception):
    """A message was not delivered.

    ``transient`` is True when trying again later may succeed (server down, timeout, a 4xx
    reply) and False when it will not (a 5xx reply such as an unknown recipient, a server that
    does not speak the TLS we were told to use, a certificate we do not trust). ``code`` is the
    SMTP reply code when the server gave one.
    """

    def __init__(self, transient: bool, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.transient = transient
        self.reason = reason
        self.code = code

    def __repr__(self) -> str:
        kind = "transient" if self.transient else "permanent"
        return f"MailDeliveryError({kind}, {self.reason!r})"


def _check_header_value(name: str, value: str) -> None:
    # A CR or LF inside a header value would let text from a context (a reason, a name) start
    # a header of its own: refuse it here, before any backend sees the message.
    if "\r" in value or "\n" in value:
        raise ValueError(f"mail header {name} must be a single line")


@dataclass(frozen=True)
class MailMessage:
    """One e-mail, ready to send.

    ``to`` is one address or several (``"kehu@example.com"`` or ``"张三 <kehu@example.com>"``).
    Send one message per recipient where you can: when a server accepts some recipients and
    refuses others, a retry would reach the accepted ones twice. ``headers`` carries extra
    headers such as ``Message-ID`` (pass a stable one per notification so that a retried send
    is recognisable as the same mail) or ``Auto-Submitted``. ``sender`` overrides the backend's
    default ``From``.
    """

    to: Sequence[str] | str
    subject: str
    text: str
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    sender: str | None = None

    def __post_init__(self) -> None:
        recipients = (self.to,) if isinstance(self.to, str) else tuple(self.to)
        if not recipients:
            raise ValueError("a mail needs at least one recipient")
        for address in recipients:
            _check_header_value("To", address)
            # One address per entry: "a@x, b@y" in one string would reach the To header but
            # not the envelope, so the second person would be shown yet never sent the mail.
            parsed = getaddresses([address])
            if len(parsed) != 1 or "@" not in parsed[0][1]:
                raise ValueError(f"not one e-mail address: {address!r}")
        _check_header_value("Subject", self.subject)
        for name, value in self.headers.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"not a header name: {name!r}")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"set {name} through the MailMessage fields, not headers")
            _check_header_value(name, value)
        # Frozen dataclass: normalise through object.__setattr__ once, at construction.
        object.__setattr__(self, "to", recipients)
        object.__setattr__(self, "headers", dict(self.headers))

    def to_email_message(self, default_sender: str = DEFAULT_SENDER) -> EmailMessage:
        """Build the MIME message: text/plain, plus text/html as an alternative when given.

        Bodies are UTF-8; non-ASCII headers (a Chinese subject or display name) are encoded as
        RFC 2047 words when the message is serialised. ``Date`` and ``Message-ID`` are added
        when ``headers`` does not carry them.
        """
        sender = self.sender or default_sender
        _check_header_value("From", sender)
        message = EmailMessage(policy=_POLICY)
        message["From"] = sender
        message["To"] = ", ".join(self.to)
        message["Subject"] = self.subject
        present = {name.lower() for name in self.headers}
        if "date" not in present:
            message["Date"] = format_datetime(datetime.now(UTC))
        if "message-id" not in present:
            # make_msgid() without a domain asks DNS for this host's name, which can stall for
            # seconds on a badly configured host; the sender's domain is as good and instant.
            message["Message-ID"] = make_msgid(domain=_domain_of(sender))
        message.set_content(self.text, charset="utf-8")
        if self.html is not None:
            message.add_alternative(self.html, subtype="html", charset="utf-8")
        # Extra headers go on last: add_alternative() moves every Content-* header present at
        # that moment (Content-Language, say) down into the text/plain part.
        for name, value in self.headers.items():
            message[name] = value
        return message


def _domain_of(address: str) -> str:
    domain = parseaddr(address)[1].rpartition("@")[2]
    return domain or "localhost"


@runtime_checkable
class MailBackend(Protocol):
    """Anything that can deliver a ``MailMessage``."""

    def send(self, message: MailMessage) -> None:
        """Deliver ``message`` or raise ``MailDeliveryError``."""
        ...  # pragma: no cover
