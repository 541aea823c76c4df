"""Delivery over SMTP, SMTP with STARTTLS, or SMTPS (implicit TLS), with every failure
classified as transient or permanent (``MailDeliveryError``)."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Mapping
from email.utils import parseaddr

from .message import DEFAULT_SENDER, MailDeliveryError, MailMessage

DEFAULT_TIMEOUT = 10.0


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
