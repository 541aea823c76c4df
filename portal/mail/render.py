"""Notification mails from templates: subject, plain text and HTML, in the recipient's language.

Templates live in ``portal/templates/mail/``: ``<kind>.<locale>.txt`` (required; its first line
is the subject) and ``<kind>.<locale>.html`` (optional). Both extend a shared layout that adds the
greeting, the footer and, for non-essential kinds, how to switch them off. Rendering uses the
Flask app's Jinja environment, so call it inside an app context (a job's service has one).

Public API:

- ``KINDS``, ``CUSTOMER_KINDS``, ``STAFF_KINDS``: the stable notification kind names.
- ``ESSENTIAL_KINDS`` / ``NON_ESSENTIAL_KINDS``: which kinds a recipient may switch off.
- ``REQUIRED_CONTEXT``: the context keys each kind needs; ``OPTIONAL_CONTEXT``: may have
  (every kind may have ``recipient_name`` and ``preferences_url``; no other keys are taken).
- ``LOCALES``: the languages mail is written in (``zh_CN``, ``en``).
- ``mail_locale(value) -> str``: a user's stored language as one of ``LOCALES``.
- ``format_mail_time(moment, locale) -> str``: ``2026-11-27 13:00 (北京时间)``.
- ``render_notification(kind, locale, context) -> RenderedMail(subject, text, html)``.
- ``compose_notification(kind, locale, context, to=…, message_id=…) -> MailMessage``.
- ``make_message_id(key, domain) -> str``: a stable ``Message-ID`` for a notification row.
- ``NotificationRenderError``: unknown kind, missing or malformed context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from flask import render_template
from jinja2 import TemplateNotFound

from portal.domain.shanghai_time import format_shanghai

from .backends import MailMessage

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"

CUSTOMER_KINDS = frozenset(
    {
        "case_opened",
        "info_requested",
        "case_approved",
        "case_resolved",
        "case_rejected",
        # Account mail (portal/services/account_links.py): always essential.
        "verify_email",
        "account_exists",
        "password_reset",
    }
)
STAFF_KINDS = frozenset(
    {"staff_assigned", "sla_at_risk", "sla_breached", "dead_letter", "registry_down"}
)
KINDS = CUSTOMER_KINDS | STAFF_KINDS

# Non-essential: mail that repeats what the portal already shows and asks nothing of anyone.
# - case_approved: the customer need not act, and case_resolved follows once the registry
#   confirms (that one is essential: it is the answer to their report).
# - staff_assigned: the reviewer's queue shows the case; some reviewers work from it alone.
# - sla_at_risk: an early warning also shown as a badge in the queue; sla_breached, which
#   supervisors must see, stays essential.
# Everything a customer must read or act on (the reference, a question, the outcome) and
# every operational alarm (breach, dead letter, registry down) cannot be switched off.
NON_ESSENTIAL_KINDS = frozenset({"case_approved", "staff_assigned", "sla_at_risk"})
ESSENTIAL_KINDS = KINDS - NON_ESSENTIAL_KINDS

REQUIRED_CONTEXT: Mapping[str, tuple[str, ...]] = {
    "case_opened": ("reference", "case_url", "first_response_due", "resolution_due"),
    "info_requested": ("reference", "case_url", "request"),
    "case_approved": ("reference", "case_url", "invoice_key"),
    "case_resolved": ("reference", "case_url", "registry_id", "rating_links"),
    "case_rejected": ("reference", "case_url", "reason"),
    "staff_assigned": ("reference", "review_url"),
    "sla_at_risk": ("reference", "review_url", "due"),
    "sla_breached": ("reference", "review_url", "due"),
    "dead_letter": ("invoice_key", "error", "dead_letters_url"),
    "registry_down": ("since", "dashboard_url"),
    "verify_email": ("verify_url",),
    "account_exists": ("signin_url", "reset_url"),
    "password_reset": ("reset_url",),
}
# Every kind may also have ``recipient_name`` (the greeting) and ``preferences_url`` (the
# "switch this off" link of non-essential kinds; without it the footer says where to look).
OPTIONAL_CONTEXT: Mapping[str, tuple[str, ...]] = {
    "case_resolved": ("invoice_key", "rating_expires"),
    "staff_assigned": ("due",),
    "dead_letter": ("attempts",),
    "registry_down": ("backlog",),
    "verify_email": ("valid_days",),
    "password_reset": ("valid_minutes",),
}
_COMMON_OPTIONAL = ("recipient_name", "preferences_url")
_TIME_KEYS = frozenset({"first_response_due", "resolution_due", "due", "since", "rating_expires"})
# Names the templates get from us; a context that also sets them is a caller's mistake.
_RESERVED = frozenset({"kind", "locale", "lang", "essential", "subject"})

_TIME_SUFFIX = {"zh_CN": "北京时间", "en": "Beijing time"}


class RenderedMail(NamedTuple):
    """A rendered notification: ``subject``, ``text`` and ``html`` (None without a template)."""

    subject: str
    text: str
    html: str | None


class NotificationRenderError(ValueError):
    """The notification cannot be rendered: unknown kind, or a context key missing or wrong."""


def mail_locale(value: str | None) -> str:
    """One of ``LOCALES`` for a stored language (``zh_CN``, ``zh-Hans``, ``en_GB``, None …).

    Chinese is the portal's default, so anything unknown or missing gets Chinese.
    """
    if not value:
        return DEFAULT_LOCALE
    lowered = value.strip().lower().replace("-", "_")
    if lowered.startswith("en"):
        return "en"
    return DEFAULT_LOCALE


def format_mail_time(moment: datetime | str, locale: str) -> str:
    """An aware datetime in Beijing time, labelled: ``2026-11-27 13:00 (北京时间)``.

    Mail is read anywhere and any time after it was sent, so the zone is always written out.
    ISO 8601 text with an offset (``2026-11-27T05:00:00+00:00``, as a JSON column keeps a
    datetime) is read as the moment it names.
    """
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            raise NotificationRenderError(f"not an ISO 8601 time: {moment!r}") from None
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise NotificationRenderError("mail times must be aware datetimes")
    return f"{format_shanghai(moment)} ({_TIME_SUFFIX[mail_locale(locale)]})"


def _check_url(key: str, value: Any) -> str:
    # Mail is read outside the portal: a relative link, or one missing its host because the job
    # built it without SERVER_NAME, goes nowhere. Refuse it here rather than send it.
    if not isinstance(value, str) or any(ch.isspace() for ch in value):
        raise NotificationRenderError(f"{key} must be an absolute http(s) URL without spaces")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise NotificationRenderError(f"{key} must be an absolute http(s) URL, got {value!r}")
    return value


def _rating_links(value: Any) -> list[dict[str, Any]]:
    try:
        pairs = [(score, url) for score, url in value]
    except (TypeError, ValueError):
        raise NotificationRenderError("rating_links must be (score, url) pairs") from None
    scores = [score for score, _ in pairs]
    valid = all(
        isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5
        for score in scores
    )
    if not valid or len(set(scores)) != len(scores):
        raise NotificationRenderError("rating_links scores must be distinct integers 1..5")
    if not pairs:
        raise NotificationRenderError("rating_links must not be empty")
    return [
        {"score": score, "url": _check_url("rating_links", url)} for score, url in sorted(pairs)
    ]


def _prepare(kind: str, locale: str, context: Mapping[str, Any]) -> dict[str, Any]:
    if kind not in KINDS:
        raise NotificationRenderError(f"unknown notification kind {kind!r}")
    clash = _RESERVED & context.keys()
    if clash:
        raise NotificationRenderError(f"context may not set {sorted(clash)}")
    missing = [key for key in REQUIRED_CONTEXT[kind] if context.get(key) in (None, "")]
    if missing:
        raise NotificationRenderError(f"{kind} needs {', '.join(missing)} in its context")
    # A key no template reads is almost always a typo ("case_link" for "case_url"): say so
    # instead of sending a mail with a hole where the link should be.
    allowed = {*REQUIRED_CONTEXT[kind], *OPTIONAL_CONTEXT.get(kind, ()), *_COMMON_OPTIONAL}
    unknown = sorted(context.keys() - allowed)
    if unknown:
        raise NotificationRenderError(f"{kind} does not use {', '.join(unknown)}")
    # Optional keys the caller left out are None, so a template can test them with "if" or
    # "is not none" (an undefined value is neither None nor reliably falsy in every test).
    prepared: dict[str, Any] = dict.fromkeys(allowed)
    for key, value in context.items():
        if value is None:
            prepared[key] = None
        elif key == "rating_links":
            prepared[key] = _rating_links(value)
        elif key.endswith("_url"):
            prepared[key] = _check_url(key, value)
        elif key in _TIME_KEYS or isinstance(value, datetime):
            # Templates get the finished text: one place decides how a time reads in mail.
            prepared[key] = format_mail_time(value, locale)
        else:
            prepared[key] = value
    return prepared


_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy_text(text: str) -> str:
    # The app's Jinja environment keeps the newline after each {% tag %} (no trim_blocks, and
    # the web templates rely on that), so the plain-text body is tidied afterwards: no trailing
    # spaces, at most one blank line in a row. "-- " keeps its space: it marks the signature.
    lines = [line if line == "-- " else line.rstrip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def render_notification(kind: str, locale: str, context: Mapping[str, Any]) -> RenderedMail:
    """Render notification ``kind`` in ``locale`` (see ``mail_locale``) with ``context``.

    ``context`` holds what ``REQUIRED_CONTEXT[kind]`` lists: plain values, times (aware
    datetimes or ISO 8601 text with an offset; shown in Beijing time) and absolute URLs (keys
    ending in ``_url``; ``rating_links`` is a list of ``(score, url)`` pairs). Raises
    ``NotificationRenderError`` when something is missing or malformed, so a broken mail is
    never sent. Needs an app context.
    """
    locale = mail_locale(locale)
    values = _prepare(kind, locale, context)
    values.update(
        kind=kind,
        locale=locale,
        lang="zh-CN" if locale == "zh_CN" else "en",
        essential=kind in ESSENTIAL_KINDS,
    )
    rendered = render_template(f"mail/{kind}.{locale}.txt", **values)
    # The text template's first line is the subject (see templates/mail/_layout.txt).
    first_line, _, body = rendered.partition("\n")
    subject = " ".join(first_line.split())
    if not subject:
        raise NotificationRenderError(f"mail/{kind}.{locale}.txt rendered an empty subject")
    text = _tidy_text(body)
    try:
        html = render_template(f"mail/{kind}.{locale}.html", subject=subject, **values)
    except TemplateNotFound:
        html = None
    return RenderedMail(subject, text, html)


def make_message_id(key: str | int, domain: str) -> str:
    """``<notification-42@portal.example>``: the same for every attempt to send one row.

    A retry after a timeout may deliver a mail the server had in fact accepted; with the same
    Message-ID, mail clients and archives recognise the second copy as the first.
    """
    token = re.sub(r"[^A-Za-z0-9._-]", "-", str(key))
    host = re.sub(r"[^A-Za-z0-9.-]", "-", domain) or "localhost"
    return f"<notification-{token}@{host}>"


def compose_notification(
    kind: str,
    locale: str,
    context: Mapping[str, Any],
    *,
    to: str | Iterable[str],
    message_id: str | None = None,
    sender: str | None = None,
) -> MailMessage:
    """Render ``kind`` and wrap it as a ``MailMessage`` with the headers notifications carry.

    ``Auto-Submitted: auto-generated`` (RFC 3834) stops vacation responders from answering;
    ``Content-Language`` names the language; ``X-Portal-Notification`` names the kind so
    staff can filter the folder or a mailbox. Pass ``message_id`` (``make_message_id``).
    """
    locale = mail_locale(locale)
    subject, text, html = render_notification(kind, locale, context)
    headers = {
        "Auto-Submitted": "auto-generated",
        "Content-Language": "zh-CN" if locale == "zh_CN" else "en",
        "X-Portal-Notification": kind,
    }
    if message_id:
        headers["Message-ID"] = message_id
    recipients = (to,) if isinstance(to, str) else tuple(to)
    return MailMessage(
        to=recipients, subject=subject, text=text, html=html, headers=headers, sender=sender
    )
