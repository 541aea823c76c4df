"""JSON bodies read safely: any shape of bad JSON is a 400, never a RecursionError (a 500).

Python's parser recurses once per nesting level, so ``[`` × 100,000 raised RecursionError, which
is no ValueError and so escaped Flask's "bad JSON" handling. ``loads`` turns that into a
ValueError and also refuses anything nested deeper than ``MAX_DEPTH`` (no invoice, lookup or
simulator body has more than two levels), so nothing walking a body later can recurse deeply.
``SafeJSONProvider`` puts it under ``request.get_json`` (Flask's documented provider hook).
"""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 32


class JSONTooDeep(ValueError):
    """The document nests arrays and objects deeper than ``MAX_DEPTH``."""


def depth_within(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True if ``value`` nests lists and dicts at most ``limit`` levels deep (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def loads(text: str | bytes) -> Any:
    """``json.loads``, raising ValueError (``JSONTooDeep``) for documents nested too deep."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTooDeep(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    if not depth_within(value):
        raise JSONTooDeep(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, reading request bodies with ``loads`` above."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if kwargs:
            return super().loads(s, **kwargs)
        return loads(s)
