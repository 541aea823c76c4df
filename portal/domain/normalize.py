"""Text normalisation shared by every parser: what people type becomes what the rules read.

People copy invoice numbers from PDFs, phones and Chinese input methods, so digits arrive
full-width (０１２), grouped with spaces or dashes, or separated by Chinese punctuation.

Public API:

- ``require_text(value, field) -> str``: None becomes "", text passes, anything else is refused.
- ``normalize_text(text) -> str``: Unicode NFKC (full-width digits, letters and punctuation
  become ASCII), trimmed, inner whitespace collapsed to one space.
- ``strip_separators(text) -> str``: ``normalize_text`` without the spaces, dashes and
  punctuation people put between groups of digits.
- ``is_ascii_digits(text) -> bool``.
- ``first_non_digit(text) -> str | None``.
"""

from __future__ import annotations

import re
import unicodedata

from portal.domain.errors import InvoiceRuleError

# Dashes people (and word processors) put between digit groups, after NFKC has already turned
# the full-width ones (－, ﹣) into "-".
DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
# Punctuation used to group digits: ASCII (also what NFKC makes of ，．／) and the Chinese marks
# NFKC leaves alone.
_GROUPING_PUNCTUATION = "_.,/\u3001\u3002\u00b7\u30fb"
_SEPARATORS = str.maketrans("", "", DASHES + _GROUPING_PUNCTUATION)
_ASCII_DIGITS = re.compile(r"[0-9]+")


def require_text(value: object, field: str) -> str:
    """Return ``value`` as text for ``field``: None means nothing was typed ("").

    Anything other than text (an int from a JSON client would lose leading zeros) is refused
    with ``not_text``.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvoiceRuleError("not_text", field=field)
    return value


def normalize_text(text: str) -> str:
    """Return ``text`` in NFKC form, trimmed, with each run of whitespace made one space.

    NFKC folds full-width forms (``０１２``, ``ＡＢＣ``, ``，``, ``￥``, the ideographic
    space) into their ASCII counterparts.
    """
    return " ".join(unicodedata.normalize("NFKC", text).split())


def strip_separators(text: str) -> str:
    """Return ``normalize_text(text)`` without whitespace, dashes or digit-grouping punctuation."""
    stripped = "".join(normalize_text(text).split()).translate(_SEPARATORS)
    # Removing a space can leave a letter next to a combining mark that NFKC would compose
    # ("A" + U+0308); normalising again keeps the result stable.
    return unicodedata.normalize("NFKC", stripped)


def is_ascii_digits(text: str) -> bool:
    """True when ``text`` is one or more of 0-9 (``str.isdigit`` also accepts ٣ and ²)."""
    return _ASCII_DIGITS.fullmatch(text) is not None


def first_non_digit(text: str) -> str | None:
    """Return the first character of ``text`` that is not 0-9, or None if there is none."""
    for character in text:
        if not "0" <= character <= "9":
            return character
    return None
