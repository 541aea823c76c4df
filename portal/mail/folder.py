"""Delivery into a folder: each message written atomically as an ``.eml`` file (``make run``,
demos), for staff to read in the portal's mail viewer (``mailbox``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .mailbox import Mailbox, StoredMail, new_message_name
from .message import DEFAULT_SENDER, MailDeliveryError, MailMessage


class FolderBackend:
    """Writes each message to ``path`` as an ``.eml`` file instead of sending it.

    For ``make run`` and demos: nothing leaves the machine, and staff read what would have been
    sent in the portal's mail viewer. Each file appears atomically (written under a temporary
    name, then renamed), so a reader never sees half a message. Files are readable by the
    portal's user only: they contain rating links and customers' addresses.
    ``list_messages``/``read_message`` read the folder back through ``Mailbox``.
    """

    def __init__(self, path: str | os.PathLike[str], *, sender: str = DEFAULT_SENDER) -> None:
        self.path = Path(path)
        self.sender = sender

    def __repr__(self) -> str:
        return f"FolderBackend({str(self.path)!r})"

    def send(self, message: MailMessage) -> None:
        """Write ``message`` as a new ``.eml`` file; a full or read-only disk is transient."""
        data = message.to_email_message(self.sender).as_bytes()
        name = new_message_name()
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
        return Mailbox(self.path).list_messages(limit)

    def read_message(self, name: str) -> StoredMail:
        """The message stored under ``name``, bodies decoded; ``MailNotFound`` otherwise."""
        return Mailbox(self.path).read_message(name)
