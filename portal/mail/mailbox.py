"""The staff mail viewer's side of the mail folder: reading back what ``FolderBackend`` wrote.

``Mailbox(path)`` lists the newest messages (headers only) and reads one by name, bodies
decoded. The file-name format is defined here, with the writer's ``new_message_name()``, so the
reader accepts exactly the names the writer makes.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

# 20261127T050000123456Z-0123456789abcdef.eml: UTC time first so names sort by age, then random
# hex so two processes writing in the same microsecond never collide.
_NAME_RE = re.compile(r"\A\d{8}T\d{12}Z-[0-9a-f]{16}\.eml\Z")


def new_message_name() -> str:
    """A fresh file name for a message written now (see the format above)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{uuid.uuid4().hex[:16]}.eml"


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


class Mailbox:
    """The ``.eml`` files of one mail folder, read for the staff mail viewer."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

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
