"""Where evidence files live: behind a small interface, local files by default.

Files are stored under random names (never the uploader's), written atomically, and never below a
``static`` folder, so nothing uploaded can be served as the portal's own content. Another
backend (shared or object storage) implements the same ``EvidenceStorage`` protocol.

Public API:

- ``StoredFile(key, size, sha256)``: what ``save`` wrote.
- ``EvidenceStorage``: the protocol (``save``, ``open``, ``read``, ``exists``, ``delete``).
- ``LocalStorage(root)``: files under ``root`` in sharded folders; ``path(key)`` for send_file.
- ``is_valid_key(key) -> bool``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from portal.scans.errors import EvidenceRefused
from portal.scans.limits import megabytes

CHUNK_BYTES = 1024 * 1024
# "ab/cd/" + 32 hex digits: 128 random bits, two levels of 256 folders each.
_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}")


@dataclass(frozen=True)
class StoredFile:
    """A file ``save`` wrote: its storage key, its size in bytes and its SHA-256 (hex)."""

    key: str
    size: int
    sha256: str


@runtime_checkable
class EvidenceStorage(Protocol):
    """What the portal needs from a place to keep evidence files."""

    def save(self, content: bytes | BinaryIO, *, max_bytes: int | None = None) -> StoredFile:
        """Store ``content`` under a new random key; refuse ``too_large`` past ``max_bytes``."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open the stored file for reading (binary); raise ``FileNotFoundError`` if absent."""
        ...

    def read(self, key: str) -> bytes:
        """Return the stored file's bytes; raise ``FileNotFoundError`` if absent."""
        ...

    def exists(self, key: str) -> bool:
        """True when a file is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the file; removing a missing file is not an error."""
        ...


def is_valid_key(key: object) -> bool:
    """True when ``key`` has the shape storage keys have (so it cannot name any other path)."""
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


def new_key() -> str:
    """Return a fresh random storage key (``ab/cd/abcd…``, 38 characters)."""
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token[2:4]}/{token}"


class LocalStorage:
    """Evidence files under ``root`` (``UPLOAD_DIR``), written atomically.

    A write goes to a temporary file in the target folder, is flushed and fsynced, then renamed
    into place with ``os.replace``, so a reader never sees half a file and a crash leaves at
    most a stray ``.tmp-`` file. ``root`` must not lie inside a folder named ``static``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        resolved = Path(root).resolve()
        if "static" in (part.lower() for part in resolved.parts):
            raise ValueError(f"evidence must not be stored below a static folder: {resolved}")
        self.root = resolved

    def path(self, key: str) -> Path:
        """Return the local path of ``key``; refuse anything that is not a storage key."""
        if not is_valid_key(key):
            raise ValueError("not a storage key")
        return self.root / key

    def save(self, content: bytes | BinaryIO, *, max_bytes: int | None = None) -> StoredFile:
        """Store ``content`` (bytes or a binary stream, read in chunks) under a new random key.

        Computes the SHA-256 while writing; refuses with ``too_large`` as soon as more than
        ``max_bytes`` arrive (nothing is kept) and with ``empty`` for no bytes at all.
        """
        key = new_key()
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(descriptor, "wb") as out:
                for chunk in _chunks(content):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise EvidenceRefused("too_large", limit_mb=megabytes(max_bytes))
                    digest.update(chunk)
                    out.write(chunk)
                if size == 0:
                    raise EvidenceRefused("empty")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _fsync_directory(target.parent)
        return StoredFile(key=key, size=size, sha256=digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        """Open the stored file for reading."""
        return self.path(key).open("rb")

    def read(self, key: str) -> bytes:
        """Return the stored file's bytes."""
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        """True when ``key`` is a storage key with a file behind it."""
        return is_valid_key(key) and self.path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the stored file, if it is there."""
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()


def _chunks(content: bytes | BinaryIO):
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content)
        for start in range(0, len(view), CHUNK_BYTES):
            yield view[start : start + CHUNK_BYTES]
        return
    while chunk := content.read(CHUNK_BYTES):
        yield chunk


def _fsync_directory(folder: Path) -> None:
    # The rename is only durable once the folder's entry is on disk too.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
