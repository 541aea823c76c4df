"""Redirect targets that cannot send a visitor off-site."""

from __future__ import annotations

from urllib.parse import urlsplit


def is_local_path(target: str | None) -> bool:
    """True for a path on this site ("/cases/3?x=1"); False for URLs, "//host" and oddities.

    Browsers treat "//evil.example" and "/\\evil.example" as other hosts, so both are refused.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return False  # urlsplit and browsers drop tabs and newlines; a header cannot hold them
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and "\\" not in target
