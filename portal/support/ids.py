"""Database ids from untrusted text: anything that is not a positive 32-bit integer is no id.

PostgreSQL's integer columns hold 32 bits and SQLite refuses anything beyond 64; a larger
number typed into a URL or a form must mean "no such object", never an overflow error.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1


def parse_id(value: object) -> int | None:
    """The id in ``value`` ("42", 42), or None for anything else (text, 0, negative, huge)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        number = int(value)
    else:
        return None
    return number if 0 < number <= MAX_ID else None


class IdConverter(IntegerConverter):
    """``<int:…>`` in a rule: a number beyond ``MAX_ID`` does not match (404, not a 500)."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
