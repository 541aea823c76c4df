"""The mail layer: every notification really sent to a local SMTP server (aiosmtpd), read back.

The server runs in this process on a free 127.0.0.1 port; what it receives is parsed the way a
mail client would (``email`` with ``policy.default``), so these tests see the same bytes a
customer's mailbox would: encoded headers, base64 bodies, the links as they will be clicked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import url_for
from itsdangerous import URLSafeTimedSerializer

from portal.mail import (
    CUSTOMER_KINDS,
    ESSENTIAL_KINDS,
    KINDS,
    NON_ESSENTIAL_KINDS,
    OPTIONAL_CONTEXT,
    REQUIRED_CONTEXT,
    STAFF_KINDS,
    FolderBackend,
    MailBackend,
    MailDeliveryError,
    MailMessage,
    MailNotFound,
    NotificationRenderError,
    RatingTokenExpired,
    RatingTokenInvalid,
    SmtpBackend,
    backend_from_url,
    compose_notification,
    format_mail_time,
    mail_backend,
    mail_locale,
    make_message_id,
    make_rating_token,
    new_nonce,
    read_rating_token,
    render_notification,
)
from portal.mail.tokens import RATING_SALT
from tests.conftest import free_port

BASE = "http://portal.test"
REFERENCE = "BJ-2026-000001"
INVOICE_KEY = "011001900111-12345678"
SECRET = "mail-test-secret"
# 05:00 UTC is 13:00 in Beijing: every mail must show the Beijing time, labelled.
DUE = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
CJK = re.compile(r"[\u4e00-\u9fff]")
URL_RE = re.compile(r"https?://[^\s<>\"')]+")


# --------------------------------------------------------------------------------------------
# A real SMTP server


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.raw)


@dataclass
class RecordingHandler:
    """aiosmtpd handler: keeps what arrives; tests can make it refuse RCPT or DATA."""

    received: list[Received] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply
    data_reply: str | None = None
    logins: list[tuple[str, str]] = field(default_factory=list)

    def reset(self) -> None:
        self.received.clear()
        self.refuse_rcpt.clear()
        self.data_reply = None
        self.logins.clear()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        password = auth_data.password.decode()
        self.logins.append((login, password))
        # handled=False: aiosmtpd sends the 235 / 535 reply itself (True means "I replied").
        return AuthResult(success=(login, password) == ("portal", "s3cret p@ss"), handled=False)


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler

    def backend(self, **kwargs) -> SmtpBackend:
        kwargs.setdefault("timeout", 5.0)
        return SmtpBackend(self.host, self.port, **kwargs)

    def only(self) -> Received:
        assert len(self.handler.received) == 1, self.handler.received
        return self.handler.received[0]


def _start(handler: RecordingHandler, **kwargs) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture(scope="module")
def smtp_server():
    handler = RecordingHandler()
    controller = _start(handler)
    yield SmtpServer(controller.hostname, controller.port, handler)
    controller.stop()


@pytest.fixture
def smtp(smtp_server):
    smtp_server.handler.reset()
    return smtp_server


# --------------------------------------------------------------------------------------------
# Contexts for every kind, with links that point at real portal pages


def urls(app) -> dict[str, str]:
    """Absolute links built by the app itself, the way a job with SERVER_NAME would."""
    with app.test_request_context(base_url=BASE):
        return {
            "case_url": url_for("customer.case_detail", reference=REFERENCE, _external=True),
            "review_url": url_for("staff.case_review", reference=REFERENCE, _external=True),
            "dead_letters_url": url_for("staff.dead_letters", _external=True),
            "dashboard_url": url_for("staff.queue", _external=True),
            "verify_url": url_for("auth.verify_email", token="t0ken", _external=True),
            "signin_url": url_for("auth.login", _external=True),
            "reset_url": url_for("auth.reset_password", token="t0ken", _external=True),
        }


# Pages these links must open (rating and preference pages belong to the notification work).
ENDPOINTS = {
    "case_url": "customer.case_detail",
    "review_url": "staff.case_review",
    "dead_letters_url": "staff.dead_letters",
    "dashboard_url": "staff.queue",
    "verify_url": "auth.verify_email",
    "signin_url": "auth.login",
    "reset_url": "auth.reset_password",
}
PREFERENCES_URL = f"{BASE}/account/notifications"


def rating_links(case_id: int = 42, nonce: str = "n0nce-abc") -> list[tuple[int, str]]:
    token = make_rating_token(case_id, nonce, SECRET, NOW)
    return [(score, f"{BASE}/rate/{token}?score={score}") for score in range(1, 6)]


FREE_TEXT = {
    "request": "请上传发票的清晰照片 & 购买方信息 <盖章页>",
    "reason": "该发票已于 2026-11-20 登记 <无需补录>",
}


def context_for(kind: str, links: dict[str, str]) -> dict:
    """Everything ``kind`` needs; free text with characters HTML must escape."""
    values = {
        "reference": REFERENCE,
        "invoice_key": INVOICE_KEY,
        "first_response_due": DUE,
        "resolution_due": DUE + timedelta(days=2),
        "registry_id": "REG-20261127-0001",
        "rating_links": rating_links(),
        **FREE_TEXT,
        "due": DUE,
        "error": "HTTP 409: already registered with different fields",
        "since": DUE - timedelta(minutes=30),
        **links,
    }
    context = {key: values[key] for key in REQUIRED_CONTEXT[kind]}
    if kind in NON_ESSENTIAL_KINDS:
        context["preferences_url"] = PREFERENCES_URL
    return context


def links_in(message: EmailMessage) -> tuple[list[str], list[str]]:
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    hrefs = re.findall(r'href="([^"]+)"', html)
    return URL_RE.findall(text), [h.replace("&amp;", "&") for h in hrefs]


def send_kind(app, smtp: SmtpServer, kind: str, locale: str, **extra) -> EmailMessage:
    with app.app_context():
        context = {**context_for(kind, urls(app)), **extra}
        message = compose_notification(
            kind,
            locale,
            context,
            to="kehu@example.com",
            message_id=make_message_id(7, "portal.test"),
        )
    smtp.backend().send(message)
    return smtp.only().message


# --------------------------------------------------------------------------------------------
# Every kind, both languages, through SMTP


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_arrives_in_the_recipients_language(app, smtp, kind, locale):
    with app.app_context():
        expected = render_notification(kind, locale, context_for(kind, urls(app)))
    received = send_kind(app, smtp, kind, locale)
    envelope = smtp.only()

    assert envelope.rcpt_tos == ["kehu@example.com"]
    assert envelope.mail_from == "noreply@localhost"
    # 7-bit clean: the Chinese travels RFC 2047 / base64 encoded, not as raw 8-bit bytes.
    assert envelope.raw.isascii()
    assert received["Subject"] == expected.subject
    assert received["Message-ID"] == "<notification-7@portal.test>"
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["X-Portal-Notification"] == kind
    text = received.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = received.get_body(("html",)).get_content()
    assert text == expected.text

    if locale == "zh_CN":
        assert received["Content-Language"] == "zh-CN"
        assert CJK.search(received["Subject"])
        assert "您好" in text and "发票补录服务平台" in text.rsplit("-- \n", 1)[1]
        assert 'lang="zh-CN"' in html
    else:
        assert received["Content-Language"] == "en"
        assert not CJK.search(received["Subject"])
        # The only Chinese in an English mail is the portal's name beside its English one,
        # and what staff typed (a reason, a request), which is quoted as written.
        template_text = text.replace("(发票补录服务平台)", "")
        for typed in FREE_TEXT.values():
            template_text = template_text.replace(typed, "")
        assert not CJK.search(template_text)
        assert "Invoice Re-entry Portal" in text.rsplit("-- \n", 1)[1]
        assert 'lang="en"' in html

    text_links, html_links = links_in(received)
    wanted = [v for k, v in urls(app).items() if k in REQUIRED_CONTEXT[kind]]
    for url in wanted:
        assert url in text_links and url in html_links
    for url in text_links + html_links:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("http", "portal.test"), url

    optional_line = "可选通知" if locale == "zh_CN" else "optional notification"
    if kind in NON_ESSENTIAL_KINDS:
        assert optional_line in text and PREFERENCES_URL in text
        assert PREFERENCES_URL in html_links
    else:
        assert optional_line not in text and PREFERENCES_URL not in text


@pytest.mark.parametrize(
    ("kind", "locale", "shown"),
    [
        ("case_opened", "zh_CN", "2026-11-27 13:00 (北京时间)"),
        ("case_opened", "en", "2026-11-27 13:00 (Beijing time)"),
        ("sla_breached", "zh_CN", "2026-11-27 13:00 (北京时间)"),
        ("registry_down", "en", "2026-11-27 12:30 (Beijing time)"),
    ],
)
def test_times_are_shown_in_beijing_time(app, smtp, kind, locale, shown):
    received = send_kind(app, smtp, kind, locale)
    assert shown in received.get_body(("plain",)).get_content()
    assert shown in received.get_body(("html",)).get_content()


def test_links_in_received_mail_open_real_portal_pages(app, smtp):
    client = app.test_client()
    adapter = app.url_map.bind("portal.test")
    for kind in ("case_opened", "staff_assigned", "dead_letter", "registry_down"):
        smtp.handler.reset()
        text_links, html_links = links_in(send_kind(app, smtp, kind, "zh_CN"))
        checked = 0
        for url in set(text_links + html_links) - {PREFERENCES_URL}:
            path = urlsplit(url).path
            endpoint, _ = adapter.match(path)
            assert endpoint in ENDPOINTS.values()
            # Signed out, a real page sends you to sign in; a broken link would be a 404.
            response = client.get(path)
            assert response.status_code in (200, 302, 303), (url, response.status_code)
            checked += 1
        assert checked


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_rating_links_carry_a_token_that_reads_back(app, smtp, locale):
    nonce = new_nonce()
    received = send_kind(app, smtp, "case_resolved", locale, rating_links=rating_links(99, nonce))
    text_links, html_links = links_in(received)
    for links in (text_links, html_links):
        rating = [url for url in links if urlsplit(url).path.startswith("/rate/")]
        assert [int(parse_qs(urlsplit(u).query)["score"][0]) for u in rating] == [1, 2, 3, 4, 5]
        for url in rating:
            token = urlsplit(url).path.removeprefix("/rate/")
            assert read_rating_token(token, SECRET, timedelta(days=30), NOW) == (99, nonce)
    text = received.get_body(("plain",)).get_content()
    assert ("非常满意" if locale == "zh_CN" else "Very satisfied") in text


def test_free_text_is_escaped_in_html_and_verbatim_in_text(app):
    with app.app_context():
        context = context_for("case_rejected", urls(app))
        context["reason"] = "<script>alert(1)</script> & 原因"
        _, text, html = render_notification("case_rejected", "zh_CN", context)
    assert "<script>alert(1)</script> & 原因" in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 原因" in html


def test_a_line_break_in_a_value_cannot_add_headers(app, smtp):
    with app.app_context():
        context = context_for("case_approved", urls(app))
        context["reference"] = "BJ-1\r\nBcc: victim@example.com"
        message = compose_notification("case_approved", "en", context, to="kehu@example.com")
    assert "\n" not in message.subject and "\r" not in message.subject
    smtp.backend().send(message)
    received = smtp.only()
    assert received.rcpt_tos == ["kehu@example.com"]
    assert received.message["Bcc"] is None


def test_greeting_uses_the_recipients_name(app):
    with app.app_context():
        context = {**context_for("staff_assigned", urls(app)), "recipient_name": "王审核"}
        _, zh, _ = render_notification("staff_assigned", "zh_CN", context)
        _, en, _ = render_notification("staff_assigned", "en", context)
    assert zh.startswith("王审核，您好：")
    assert en.startswith("Hello 王审核,")


def test_non_essential_mail_without_a_preferences_link_says_where_to_look(app):
    with app.app_context():
        context = context_for("case_approved", urls(app))
        del context["preferences_url"]
        _, text, html = render_notification("case_approved", "zh_CN", context)
    assert "通知设置" in text and "通知设置" in html


def test_optional_values_appear_only_when_given(app):
    with app.app_context():
        base = context_for("registry_down", urls(app))
        _, without, _ = render_notification("registry_down", "zh_CN", base)
        _, with_backlog, _ = render_notification("registry_down", "zh_CN", {**base, "backlog": 0})
    assert "排队" not in without
    assert "当前排队发票：0 张" in with_backlog


# --------------------------------------------------------------------------------------------
# Kinds, locales, contexts


def test_kinds_are_split_into_essential_and_not():
    assert ESSENTIAL_KINDS | NON_ESSENTIAL_KINDS == KINDS == CUSTOMER_KINDS | STAFF_KINDS
    assert not ESSENTIAL_KINDS & NON_ESSENTIAL_KINDS
    # What a customer must read or act on can never be switched off.
    assert {"case_opened", "info_requested", "case_resolved", "case_rejected"} <= ESSENTIAL_KINDS
    assert {"sla_breached", "dead_letter", "registry_down"} <= ESSENTIAL_KINDS
    assert "case_approved" in NON_ESSENTIAL_KINDS
    assert set(REQUIRED_CONTEXT) == KINDS and set(OPTIONAL_CONTEXT) <= KINDS


def test_every_kind_has_text_and_html_templates_in_both_languages(app):
    names = set(app.jinja_env.list_templates())
    for kind in KINDS:
        for locale in ("zh_CN", "en"):
            assert {f"mail/{kind}.{locale}.txt", f"mail/{kind}.{locale}.html"} <= names


@pytest.mark.parametrize(
    ("stored", "locale"),
    [
        (None, "zh_CN"),
        ("", "zh_CN"),
        ("zh_CN", "zh_CN"),
        ("zh-Hans-CN", "zh_CN"),
        ("en", "en"),
        ("en_GB", "en"),
        ("fr", "zh_CN"),  # no mail in French: the portal's default language
    ],
)
def test_mail_locale(stored, locale):
    assert mail_locale(stored) == locale


def test_format_mail_time_refuses_naive_times():
    assert format_mail_time(DUE, "en") == "2026-11-27 13:00 (Beijing time)"
    for naive in (datetime(2026, 11, 27, 13, 0), "2026-11-27T13:00:00", "tomorrow"):
        with pytest.raises(NotificationRenderError):
            format_mail_time(naive, "zh_CN")


def test_a_context_read_back_from_json_renders_the_same(app):
    # Notification rows keep their context in a JSON column: times as ISO text, pairs as lists.
    with app.app_context():
        context = context_for("case_resolved", urls(app))
        stored = json.loads(json.dumps({**context, "rating_expires": DUE.isoformat()}))
        direct = render_notification("case_resolved", "zh_CN", {**context, "rating_expires": DUE})
        assert render_notification("case_resolved", "zh_CN", stored) == direct
        assert "2026-11-27 13:00 (北京时间) 前有效" in direct.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"case_url": None}, "needs case_url"),
        ({"case_url": "/cases/BJ-2026-000001"}, "absolute"),
        ({"case_url": "javascript:alert(1)"}, "absolute"),
        ({"case_url": "http://portal.test/a b"}, "without spaces"),
        ({"case_link": f"{BASE}/cases/x"}, "does not use case_link"),
        ({"locale": "en"}, "may not set"),
        ({"rating_links": [(6, f"{BASE}/rate/x")]}, "1..5"),
        ({"rating_links": [(1, f"{BASE}/r"), (1, f"{BASE}/r")]}, "1..5"),
        ({"rating_links": [(True, f"{BASE}/r")]}, "1..5"),
        ({"rating_links": [("5", f"{BASE}/r"), (1, f"{BASE}/r")]}, "1..5"),
        ({"rating_links": []}, "rating_links"),
        ({"rating_links": "oops"}, "pairs"),
        ({"rating_links": [(1, "/rate/x")]}, "absolute"),
    ],
)
def test_malformed_contexts_are_refused(app, change, message):
    with app.app_context():
        context = {**context_for("case_resolved", urls(app)), **change}
        with pytest.raises(NotificationRenderError, match=message):
            render_notification("case_resolved", "zh_CN", context)


def test_unknown_kind_and_naive_time_are_refused(app):
    with app.app_context():
        with pytest.raises(NotificationRenderError, match="unknown"):
            render_notification("case_exploded", "zh_CN", {})
        context = {**context_for("sla_breached", urls(app)), "due": datetime(2026, 11, 27)}
        with pytest.raises(NotificationRenderError, match="aware"):
            render_notification("sla_breached", "en", context)


def test_make_message_id_is_stable_and_safe():
    assert make_message_id(42, "portal.example") == "<notification-42@portal.example>"
    assert make_message_id("a b>c", "x y") == "<notification-a-b-c@x-y>"


# --------------------------------------------------------------------------------------------
# SMTP failures: transient or permanent


def plain_message(to: str | list[str] = "kehu@example.com") -> MailMessage:
    return MailMessage(to=to, subject="测试邮件", text="你好\n")


@pytest.mark.parametrize(
    ("reply", "transient"),
    [("550 5.1.1 <nobody@example.com>: user unknown", False), ("451 4.3.0 try later", True)],
)
def test_refused_recipient(smtp, reply, transient):
    smtp.handler.refuse_rcpt["nobody@example.com"] = reply
    with pytest.raises(MailDeliveryError) as caught:
        smtp.backend().send(plain_message("nobody@example.com"))
    assert caught.value.transient is transient
    assert caught.value.code == int(reply[:3])
    assert "nobody@example.com" in caught.value.reason
    assert smtp.handler.received == []


@pytest.mark.parametrize(
    ("reply", "transient"),
    [("554 5.6.0 message content rejected", False), ("452 4.3.1 insufficient storage", True)],
)
def test_refused_data(smtp, reply, transient):
    smtp.handler.data_reply = reply
    with pytest.raises(MailDeliveryError) as caught:
        smtp.backend().send(plain_message())
    assert caught.value.transient is transient
    assert caught.value.code == int(reply[:3])


def test_partly_refused_recipients_are_permanent_and_named(smtp):
    smtp.handler.refuse_rcpt["nobody@example.com"] = "550 5.1.1 user unknown"
    with pytest.raises(MailDeliveryError) as caught:
        smtp.backend().send(plain_message(["kehu@example.com", "nobody@example.com"]))
    assert caught.value.transient is False
    assert "nobody@example.com" in caught.value.reason
    assert smtp.only().rcpt_tos == ["kehu@example.com"]


def test_server_down_is_transient():
    backend = SmtpBackend("127.0.0.1", free_port(), timeout=2.0)
    with pytest.raises(MailDeliveryError) as caught:
        backend.send(plain_message())
    assert caught.value.transient is True


def test_a_server_that_never_answers_times_out_as_transient():
    # The kernel completes the TCP handshake for a listening socket nobody accepts from, so
    # the client connects and then waits for a greeting that never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        backend = SmtpBackend("127.0.0.1", silent.getsockname()[1], timeout=0.3)
        with pytest.raises(MailDeliveryError) as caught:
            backend.send(plain_message())
    assert caught.value.transient is True
    assert "timed out" in caught.value.reason


def test_starttls_is_required_not_hoped_for(smtp):
    # The plain test server offers no STARTTLS: sending in clear text anyway would defeat it.
    with pytest.raises(MailDeliveryError) as caught:
        smtp.backend(security="starttls").send(plain_message())
    assert caught.value.transient is False
    assert "STARTTLS" in caught.value.reason
    assert smtp.handler.received == []


def test_login_against_a_server_without_auth_is_permanent(smtp):
    with pytest.raises(MailDeliveryError) as caught:
        smtp.backend(username="portal", password="x").send(plain_message())
    assert caught.value.transient is False


def test_a_password_smtp_cannot_carry_is_permanent(starttls_server, client_tls):
    backend = starttls_server.backend(
        security="starttls", username="portal", password="密码", ssl_context=client_tls
    )
    with pytest.raises(MailDeliveryError) as caught:
        backend.send(plain_message())
    assert caught.value.transient is False


def test_mail_message_refuses_header_injection_and_empty_recipients():
    with pytest.raises(ValueError, match="single line"):
        MailMessage(to="a@example.com\r\nBcc: b@example.com", subject="s", text="t")
    with pytest.raises(ValueError, match="single line"):
        MailMessage(to="a@example.com", subject="s\nBcc: b@example.com", text="t")
    with pytest.raises(ValueError, match="single line"):
        MailMessage(to="a@example.com", subject="s", text="t", headers={"X-A": "1\n2"})
    with pytest.raises(ValueError, match="fields"):
        MailMessage(to="a@example.com", subject="s", text="t", headers={"Bcc": "b@example.com"})
    with pytest.raises(ValueError, match="recipient"):
        MailMessage(to=[], subject="s", text="t")
    with pytest.raises(ValueError, match="address"):
        MailMessage(to="not an address", subject="s", text="t")
    with pytest.raises(ValueError, match="one e-mail address"):
        MailMessage(to="a@example.com, b@example.com", subject="s", text="t")
    with pytest.raises(ValueError, match="header name"):
        MailMessage(to="a@example.com", subject="s", text="t", headers={"X Bad:": "1"})


def test_display_names_and_sender_are_encoded(smtp):
    message = MailMessage(
        to="张三 <kehu@example.com>",
        subject="您的申请",
        text="正文\n",
        sender="补录平台 <mail@portal.test>",
    )
    smtp.backend().send(message)
    received = smtp.only()
    assert received.raw.isascii()
    assert received.mail_from == "mail@portal.test"
    parsed = received.message
    assert parsed["To"].addresses[0].display_name == "张三"
    assert parsed["From"].addresses[0].display_name == "补录平台"
    assert parsed.get_content() == "正文\r\n"
    # Without a Message-ID from the caller, one is made from the sender's domain (no DNS).
    assert parsed["Message-ID"].endswith("@portal.test>")


# --------------------------------------------------------------------------------------------
# TLS: SMTPS and STARTTLS with a certificate made for the test


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    # A small EC key: generated in milliseconds, valid for 127.0.0.1 so host checks pass.
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    command += ["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


def server_tls(certificate) -> ssl.SSLContext:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def client_tls(certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


@pytest.fixture(scope="module")
def smtps_server(certificate):
    handler = RecordingHandler()
    # Implicit TLS: aiosmtpd only knows about STARTTLS, so AUTH is offered here by not asking
    # for STARTTLS first (the connection is already TLS from its first byte).
    controller = _start(
        handler,
        ssl_context=server_tls(certificate),
        authenticator=handler.authenticate,
        auth_require_tls=False,
    )
    yield SmtpServer(controller.hostname, controller.port, handler)
    controller.stop()


@pytest.fixture(scope="module")
def starttls_server(certificate):
    handler = RecordingHandler()
    controller = _start(
        handler,
        tls_context=server_tls(certificate),
        require_starttls=True,
        authenticator=handler.authenticate,
        auth_required=True,
    )
    yield SmtpServer(controller.hostname, controller.port, handler)
    controller.stop()


@pytest.mark.parametrize(
    ("scheme", "server"), [("smtps", "smtps_server"), ("smtp+starttls", "starttls_server")]
)
def test_tls_with_login_from_mail_url(request, client_tls, scheme, server):
    server = request.getfixturevalue(server)
    server.handler.reset()
    url = f"{scheme}://portal:s3cret%20p%40ss@127.0.0.1:{server.port}?timeout=5"
    backend = backend_from_url(url, "unused", ssl_context=client_tls)
    backend.send(plain_message())
    assert server.handler.logins == [("portal", "s3cret p@ss")]
    assert server.only().message["Subject"] == "测试邮件"


def test_wrong_password_is_permanent(starttls_server, client_tls):
    starttls_server.handler.reset()
    backend = starttls_server.backend(
        security="starttls", username="portal", password="wrong", ssl_context=client_tls
    )
    with pytest.raises(MailDeliveryError) as caught:
        backend.send(plain_message())
    assert caught.value.transient is False and caught.value.code == 535


def test_an_untrusted_certificate_is_permanent(smtps_server):
    backend = smtps_server.backend(security="ssl")  # the system CAs do not know our test cert
    with pytest.raises(MailDeliveryError) as caught:
        backend.send(plain_message())
    assert caught.value.transient is False
    assert "certificate" in caught.value.reason


# --------------------------------------------------------------------------------------------
# The folder backend (make run) and the staff mail viewer's reads


def test_folder_backend_writes_lists_and_reads(app, tmp_path):
    folder = FolderBackend(tmp_path / "mail")
    with app.app_context():
        for kind in ("case_opened", "case_rejected", "registry_down"):
            folder.send(
                compose_notification(
                    kind, "zh_CN", context_for(kind, urls(app)), to="kehu@example.com"
                )
            )
    files = sorted(os.listdir(tmp_path / "mail"))
    assert len(files) == 3 and all(name.endswith(".eml") for name in files)  # no temp files
    assert all((tmp_path / "mail" / name).stat().st_mode & 0o777 == 0o600 for name in files)

    listed = folder.list_messages()
    assert [m.name for m in listed] == sorted(files, reverse=True)  # newest first
    assert listed[0].subject == "发票登记系统无法访问"
    assert listed[-1].subject == f"已收到您的发票补录申请（{REFERENCE}）"
    assert listed[0].text is None and listed[0].date is not None
    assert [m.name for m in folder.list_messages(limit=2)] == [m.name for m in listed[:2]]

    stored = folder.read_message(listed[1].name)
    assert stored.subject == f"关于您的申请（{REFERENCE}）的审核结果"
    assert "该发票已于 2026-11-20 登记 <无需补录>" in stored.text
    assert "\r" not in stored.text
    assert "&lt;无需补录&gt;" in stored.html
    assert stored.to == "kehu@example.com"
    assert ("X-Portal-Notification", "case_rejected") in stored.headers
    # What is on disk is a complete, standard message: any mail program can open it.
    raw = (tmp_path / "mail" / listed[1].name).read_bytes()
    assert raw.isascii() and b"\r\n" in raw


def test_folder_backend_refuses_names_outside_its_folder(tmp_path):
    folder = FolderBackend(tmp_path / "mail")
    folder.send(plain_message())
    (name,) = os.listdir(tmp_path / "mail")
    secret = tmp_path / "secret.txt"
    secret.write_text("not mail")
    outside = "20260101T000000000000Z-0123456789abcdef.eml"
    (tmp_path / outside).write_text("Subject: outside\n\nx")
    # A link with a valid name that points elsewhere must not be followed either.
    linked = "20260101T000000000001Z-0123456789abcdef.eml"
    os.symlink(secret, tmp_path / "mail" / linked)
    for bad in [
        "../secret.txt",
        str(secret),
        f"../{outside}",
        f"{name}/../{name}",
        "..",
        "",
        name.upper(),
        name + "\x00",
        linked,
        "20990101T000000000000Z-0123456789abcdef.eml",  # well formed, absent
    ]:
        with pytest.raises(MailNotFound):
            folder.read_message(bad)
    assert folder.read_message(name).subject == "测试邮件"
    assert [m.name for m in folder.list_messages()] == [name]  # the link is not listed either


def test_folder_backend_failure_is_transient(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(MailDeliveryError) as caught:
        FolderBackend(blocker).send(plain_message())
    assert caught.value.transient is True


def test_folder_backend_listing_an_absent_folder_is_empty(tmp_path):
    assert FolderBackend(tmp_path / "nowhere").list_messages() == []


# --------------------------------------------------------------------------------------------
# MAIL_URL


@pytest.mark.parametrize(
    ("url", "host", "port", "security", "user", "password", "timeout"),
    [
        ("smtp://relay.internal", "relay.internal", 25, "none", None, None, 10.0),
        ("smtp://127.0.0.1:2525", "127.0.0.1", 2525, "none", None, None, 10.0),
        ("smtp://relay?starttls=1", "relay", 25, "starttls", None, None, 10.0),
        ("smtp+starttls://u:p@mail.example", "mail.example", 587, "starttls", "u", "p", 10.0),
        (
            "smtps://user%40corp:p%40ss@mail.example:465?timeout=5",
            "mail.example",
            465,
            "ssl",
            "user@corp",
            "p@ss",
            5.0,
        ),
    ],
)
def test_backend_from_url_smtp(url, host, port, security, user, password, timeout):
    backend = backend_from_url(url, "unused")
    assert isinstance(backend, SmtpBackend) and isinstance(backend, MailBackend)
    assert (backend.host, backend.port, backend.security) == (host, port, security)
    assert (backend.username, backend.password, backend.timeout) == (user, password, timeout)
    assert "p@ss" not in repr(backend) and ":p@" not in repr(backend)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (None, "/default/mail"),
        ("", "/default/mail"),
        ("file:///var/spool/portal-mail", "/var/spool/portal-mail"),
        ("file://localhost/var/mail", "/var/mail"),
        ("file://instance/mail", "instance/mail"),
    ],
)
def test_backend_from_url_folder(url, path):
    backend = backend_from_url(url, "/default/mail")
    assert isinstance(backend, FolderBackend) and isinstance(backend, MailBackend)
    assert backend.path == Path(path)


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example",
        "smtp://",
        "smtp://h?foo=1",
        "smtp://h?starttls=maybe",
        "smtps://h?starttls=1",
        "smtp://user@h",
        "smtp://h:99999",
        "smtp://h?timeout=soon",
        "smtp://h?timeout=0",
        "file:///x?sync=1",
    ],
)
def test_backend_from_url_refuses_what_it_does_not_understand(url):
    with pytest.raises(ValueError, match="MAIL_URL"):
        backend_from_url(url, "unused")


def test_app_mail_backend_defaults_to_the_instance_folder(app_factory):
    app = app_factory(MAIL_URL=None)
    backend = mail_backend(app)
    assert isinstance(backend, FolderBackend)
    assert backend.path == Path(app.instance_path) / "mail"
    assert isinstance(mail_backend(app_factory(MAIL_URL="smtp://127.0.0.1:2525")), SmtpBackend)


# --------------------------------------------------------------------------------------------
# Rating tokens


def test_rating_token_round_trip():
    token = make_rating_token(42, "nonce-1", SECRET, NOW)
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", token)  # safe in a URL path as it is
    later = NOW + timedelta(days=29, hours=23)
    assert read_rating_token(token, SECRET, timedelta(days=30), later) == (42, "nonce-1")
    assert read_rating_token(token, SECRET, 60, NOW + timedelta(seconds=60)) == (42, "nonce-1")


def test_tampered_or_foreign_rating_tokens_are_invalid():
    token = make_rating_token(42, "nonce-1", SECRET, NOW)
    payload, _, rest = token.partition(".")
    forged = URLSafeTimedSerializer(SECRET, salt="something-else").dumps([43, "nonce-1"])
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in [
        flipped,
        payload[:-2] + "xy." + rest,
        token[: len(token) // 2],
        forged,
        "",
        "garbage",
        "a.b.c",
    ]:
        with pytest.raises(RatingTokenInvalid):
            read_rating_token(bad, SECRET, timedelta(days=30), NOW)
    with pytest.raises(RatingTokenInvalid):
        read_rating_token(token, "another-secret", timedelta(days=30), NOW)
    # Signed with our key and salt but not a (case id, nonce) pair: still refused.
    odd = URLSafeTimedSerializer(SECRET, salt=RATING_SALT).dumps({"case": 42})
    with pytest.raises(RatingTokenInvalid):
        read_rating_token(odd, SECRET, timedelta(days=30), datetime.now(UTC))


def test_expired_rating_tokens_say_so():
    token = make_rating_token(42, "nonce-1", SECRET, NOW)
    with pytest.raises(RatingTokenExpired) as caught:
        read_rating_token(token, SECRET, timedelta(days=30), NOW + timedelta(days=30, seconds=1))
    assert caught.value.reason == "expired"
    # Dated after "now": a clock gone wrong or a forged date; not accepted either.
    with pytest.raises(RatingTokenExpired):
        read_rating_token(token, SECRET, timedelta(days=30), NOW - timedelta(minutes=5))


def test_rating_tokens_refuse_bad_input():
    with pytest.raises(ValueError):
        make_rating_token(0, "n", SECRET, NOW)
    with pytest.raises(ValueError):
        make_rating_token(True, "n", SECRET, NOW)
    with pytest.raises(ValueError):
        make_rating_token(1, "", SECRET, NOW)
    with pytest.raises(ValueError, match="aware"):
        make_rating_token(1, "n", SECRET, datetime(2026, 1, 1))
    assert new_nonce() != new_nonce() and len(new_nonce()) >= 20
