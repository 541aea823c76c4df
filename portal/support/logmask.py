"""Personal data kept out of the logs: e-mail addresses, mobile numbers and taxpayer IDs.

A :class:`MaskingFilter` formats each record's message first (``msg % args``, exactly as
logging would), masks what it finds, and stores the masked text back as a message with no
arguments, so %-formatting is never broken and nothing unmasked survives in ``args``. The
traceback and stack text of a record are masked too.

- e-mail addresses keep their first character and the domain: ``k***@example.com``;
- Chinese mobile numbers (with or without ``+86`` and separators) keep the first three and the
  last four digits: ``138****5678``;
- taxpayer IDs (18-character 统一社会信用代码 and the legacy 15-character form) keep the first
  four and the last four characters: ``9111********3199`` (always eight stars, so the length is
  not revealed either).

Public API:

- ``mask(text) -> str``: the masking itself.
- ``MaskingFilter``: a ``logging.Filter`` that masks and never drops a record.
- ``install(app) -> MaskingFilter``: attach one filter to the app's logger and handlers, the
  root handlers, and gunicorn's and werkzeug's loggers and handlers (safe to call again).
"""

from __future__ import annotations

import logging
import re

# Local part of at least one character, a domain with at least one dot. Characters around the
# "@" that are not part of an address (Chinese text, brackets, quotes) end the match.
# "%40" is the "@" of an address inside a URL's query string (access logs).
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@|%40)"
    r"([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"
)
# 统一社会信用代码: two characters of the code alphabet, a six-digit division code, ten more
# characters; legacy: a six-digit division code, eight characters and a check digit. In either
# case (people type them in lower case too), never part of a longer run of letters or digits.
_USCC_SYMBOL = "[0-9A-HJ-NPQRTUWXY]"
_TAX_ID = re.compile(
    rf"(?<![0-9A-Za-z])((?:{_USCC_SYMBOL}{{2}}[0-9]{{6}}{_USCC_SYMBOL}{{10}})"
    r"|(?:[0-9]{6}[0-9A-Z]{8}[0-9X]))(?![0-9A-Za-z])",
    re.IGNORECASE,
)
# 1[3-9]x xxxx xxxx, optionally after +86 / 0086 / 86, with spaces or dashes between groups;
# not inside a longer number.
_MOBILE = re.compile(
    r"(?<![0-9])((?:(?:\+|00)?86[ -]?)?)(1[3-9][0-9])[ -]?[0-9]{4}[ -]?([0-9]{4})(?![0-9])"
)


def _mask_email(match: re.Match[str]) -> str:
    first, at, domain = match.groups()
    return f"{first}***{at}{domain}"


def _mask_tax_id(match: re.Match[str]) -> str:
    value = match.group(1)
    return f"{value[:4]}********{value[-4:]}"


def _mask_mobile(match: re.Match[str]) -> str:
    prefix, head, tail = match.groups()
    return f"{prefix}{head}****{tail}"


def mask(text: str) -> str:
    """Return ``text`` with e-mail addresses, mobile numbers and taxpayer IDs masked.

    E-mail addresses go first (so ``13812345678@qq.com`` becomes ``1***@qq.com``), then tax
    IDs, then mobile numbers; the stars each step leaves behind stop later steps re-matching.
    """
    if not text:
        return text
    text = _EMAIL.sub(_mask_email, text)
    text = _TAX_ID.sub(_mask_tax_id, text)
    return _MOBILE.sub(_mask_mobile, text)


class MaskingFilter(logging.Filter):
    """Mask personal data in a record's message, arguments, traceback and stack text.

    The record is changed in place and always passed on (the filter never drops anything).
    A record whose message cannot be formatted is left alone, for logging's own error report.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask ``record`` in place; always True."""
        if getattr(record, "_portal_masked", False):
            return True  # already seen by another handler or logger on the way
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = mask(message)
        if masked != message or record.args:
            # The formatted, masked text becomes the message; with no args, a "%" in it is
            # never interpreted again.
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        record._portal_masked = True
        return True


# Loggers whose own handlers (not only the root's) write to the console or files.
_OTHER_LOGGERS = ("gunicorn.error", "gunicorn.access", "werkzeug", "rq.worker")


def _attach(target: logging.Logger | logging.Handler, masking: MaskingFilter) -> None:
    if not any(isinstance(f, MaskingFilter) for f in target.filters):
        target.addFilter(masking)


def install(app) -> MaskingFilter:
    """Attach a :class:`MaskingFilter` wherever the app's records can be written.

    A logger's filters only see records logged on that very logger, while a handler's filters
    see everything that reaches it, including records propagated from child loggers
    (``portal.services.…``, ``rq.…``). So the filter goes on the app logger and its handlers,
    on every handler of the root logger, and on gunicorn's, werkzeug's and RQ's loggers and
    their handlers. Calling it again adds nothing twice. Handlers added later (e.g. by a test
    harness or a logging configuration loaded after the app) need ``install`` called again.
    """
    masking = MaskingFilter()
    loggers = [app.logger, logging.getLogger(), *map(logging.getLogger, _OTHER_LOGGERS)]
    for logger in loggers:
        _attach(logger, masking)
        for handler in logger.handlers:
            _attach(handler, masking)
    app.extensions["portal.support.logmask"] = masking
    return masking
