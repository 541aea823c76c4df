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
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import ssl
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

# The display name is encoded per RFC 2047 by the email package, so Chinese is safe here.
DEFAULT_SENDER = "发票补录服务平台 <noreply@localhost>"
DEFAULT_TIMEOUT = 10.0
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


# --------------------------------------------------------------------------------------------
# SMTP


class SmtpBackend:
    """Delivery to an SMTP server, one connection per message.

    ``security`` is ``"none"`` (plain SMTP, e.g. a relay on localhost), ``"starttls"`` (connect
    in plain text, then upgrade; refuse to go on if the server cannot) or ``"ssl"`` (SMTPS,
    TLS from the first byte, usually port 465). ``ssl_context`` defaults to the system's trusted
    certificates with host-name checking (``SSL_CERT_FILE`` points it at a private CA).
    A connection per message keeps failures independent; notification volume is small.
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        username: str | None = None,
        password: str | None = None,
        *,
        security: str = "none",
        timeout: float = DEFAULT_TIMEOUT,
        sender: str = DEFAULT_SENDER,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(f"unknown SMTP security {security!r}: use none, starttls or ssl")
        if (username is None) != (password is None):
            raise ValueError("give both an SMTP username and a password, or neither")
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.security = security
        self.timeout = timeout
        self.sender = sender
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname

    def __repr__(self) -> str:
        # Never show the password: backends end up in logs and error pages.
        user = f"{self.username}@" if self.username else ""
        return f"SmtpBackend({self.security}://{user}{self.host}:{self.port})"

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _open(self) -> smtplib.SMTP:
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._context(),
            )
        else:
            smtp = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        try:
            smtp.ehlo()
            if self.security == "starttls":
                # starttls() raises SMTPNotSupportedError when the server does not offer it:
                # we never fall back to sending a password or a mail in plain text.
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if self.username is not None:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: MailMessage) -> None:
        """Deliver ``message``; raise ``MailDeliveryError`` (transient or permanent) if not."""
        email_message = message.to_email_message(self.sender)
        # The envelope takes bare addresses. Handing smtplib "张三 <a@b>" would make it think
        # the address itself is international and demand SMTPUTF8 from the server.
        envelope_from = parseaddr(message.sender or self.sender)[1]
        envelope_to = [parseaddr(address)[1] for address in message.to]
        try:
            smtp = self._open()
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            raise _delivery_error(exc) from exc
        try:
            refused = smtp.send_message(
                email_message, from_addr=envelope_from, to_addrs=envelope_to
            )
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            smtp.close()
            raise _delivery_error(exc) from exc
        # The server has taken the message. A failing QUIT must not turn that into an error:
        # the job would retry and the customer would get the mail twice.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
        smtp.close()
        if refused:
            # Some recipients got it, some did not. Retrying would repeat it for the others,
            # so this is reported as permanent, naming who was refused.
            raise MailDeliveryError(False, "some recipients refused: " + _describe_refused(refused))


def _reply_text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return str(reply)


def _describe_refused(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address}: {code} {_reply_text(text)}" for address, (code, text) in refused.items()
    )


def _is_transient_code(code: int) -> bool:
    # 4xx: "try again later" by definition. Anything that is not a real reply code (smtplib
    # uses -1 when the connection dropped mid-reply) is treated as a network failure.
    return not 500 <= code < 600


def _delivery_error(exc: BaseException) -> MailDeliveryError:
    """Sort an smtplib / socket / ssl failure into transient or permanent."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        transient = all(_is_transient_code(code) for code in codes)
        return MailDeliveryError(
            transient,
            "recipient refused: " + _describe_refused(exc.recipients),
            codes[0] if len(codes) == 1 else None,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        # Sender refused, DATA refused, greeting or HELO refused, authentication failed.
        reason = f"{type(exc).__name__}: {exc.smtp_code} {_reply_text(exc.smtp_error)}"
        return MailDeliveryError(_is_transient_code(exc.smtp_code), reason, exc.smtp_code)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return MailDeliveryError(True, f"server disconnected: {exc}")
    if isinstance(exc, smtplib.SMTPException):
        # STARTTLS or AUTH not offered, no usable AUTH mechanism: the configuration is wrong
        # and waiting will not fix it.
        return MailDeliveryError(False, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, UnicodeError):
        # A non-ASCII password or address the server cannot take: configuration, not weather.
        return MailDeliveryError(False, f"cannot encode for SMTP: {exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailDeliveryError(False, f"TLS certificate not trusted: {exc.verify_message}")
    if isinstance(exc, TimeoutError):
        return MailDeliveryError(True, f"timed out: {exc}")
    # Connection refused or reset, DNS failure, a TLS handshake cut short: network trouble.
    return MailDeliveryError(True, f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------------------------
# Folder


# 20261127T050000123456Z-0123456789abcdef.eml: UTC time first so names sort by age, then random
# hex so two processes writing in the same microsecond never collide.
_NAME_RE = re.compile(r"\A\d{8}T\d{12}Z-[0-9a-f]{16}\.eml\Z")


class MailNotFound(LookupError):
    """No stored message has this name (or the name is not one a FolderBackend would write)."""


@dataclass(frozen=True)
class StoredMail:
    """A message read back from a ``FolderBackend``.

    ``text`` and ``html`` are the decoded bodies (``html`` is None in summaries from
    ``list_messages`` and in text-only mail). The HTML is the raw mail body: never insert it
    into a portal page; show ``text``, or serve the HTML in a sandboxed frame.
    """

    name: str
    subject: str
    sender: str
    to: str
    date: datetime | None
    size: int
    text: str | None = None
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class FolderBackend:
    """Writes each message to ``path`` as an ``.eml`` file instead of sending it.

    For ``make run`` and demos: nothing leaves the machine, and staff read what would have been
    sent in the portal's mail viewer. Each file appears atomically (written under a temporary
    name, then renamed), so a reader never sees half a message. Files are readable by the
    portal's user only: they contain rating links and customers' addresses.
    """

    def __init__(self, path: str | os.PathLike[str], *, sender: str = DEFAULT_SENDER) -> None:
        self.path = Path(path)
        self.sender = sender

    def __repr__(self) -> str:
        return f"FolderBackend({str(self.path)!r})"

    def send(self, message: MailMessage) -> None:
        """Write ``message`` as a new ``.eml`` file; a full or read-only disk is transient."""
        data = message.to_email_message(self.sender).as_bytes()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{uuid.uuid4().hex[:16]}.eml"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            # mkstemp: created with mode 0600, in the same folder so the rename is atomic.
            fd, tmp = tempfile.mkstemp(prefix=".writing-", suffix=".tmp", dir=self.path)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path / name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise MailDeliveryError(True, f"cannot write mail to {self.path}: {exc}") from exc

    def list_messages(self, limit: int = 50) -> list[StoredMail]:
        """The newest ``limit`` messages, newest first, as summaries (headers, no bodies)."""
        if limit <= 0 or not self.path.is_dir():
            return []
        with os.scandir(self.path) as entries:
            names = sorted(
                (entry.name for entry in entries if _NAME_RE.match(entry.name)), reverse=True
            )
        summaries = []
        for name in names[:limit]:
            try:
                summaries.append(self._read(name, headers_only=True))
            except MailNotFound:
                continue  # removed between listing and reading: not an error for a listing
        return summaries

    def read_message(self, name: str) -> StoredMail:
        """The message stored under ``name``, bodies decoded; ``MailNotFound`` otherwise.

        Only names this backend writes are accepted, which rules out ``../``, absolute paths
        and any other file in or outside the folder; symbolic links are not followed.
        """
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise MailNotFound(name)
        return self._read(name, headers_only=False)

    def _read(self, name: str, *, headers_only: bool) -> StoredMail:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path / name, flags)
        except OSError:
            raise MailNotFound(name) from None
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            parsed = BytesParser(policy=policy.default).parse(handle, headersonly=headers_only)
        text = html = None
        if not headers_only:
            text = _body(parsed, "plain")
            html = _body(parsed, "html")
        date = None
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            date = parsed["Date"].datetime if parsed["Date"] else None
        return StoredMail(
            name=name,
            subject=str(parsed["Subject"] or ""),
            sender=str(parsed["From"] or ""),
            to=str(parsed["To"] or ""),
            date=date,
            size=size,
            text=text,
            html=html,
            headers=tuple((key, str(value)) for key, value in parsed.items()),
        )


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    # Bodies travel with CRLF line ends (RFC 2046 canonical form); pages want plain newlines.
    return part.get_content().replace("\r\n", "\n")


# --------------------------------------------------------------------------------------------
# MAIL_URL

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
