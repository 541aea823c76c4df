"""Where evidence files live: one small interface, two backends.

Files are stored under random keys (never the uploader's names), written whole or not at all,
and never below a ``static`` folder, so nothing uploaded can be served as the portal's own
content. ``LocalStorage`` keeps them in a folder (``UPLOAD_DIR``: ``make run``, one host);
``S3Storage`` (``portal.scans.storage_s3``) keeps them in an S3-compatible bucket that every
web and worker host reads (README, "Deployment"). Both give the same keys, sizes and SHA-256,
and both are read as streams, so serving a file never holds it whole in memory.

Public API:

- ``StoredFile(key, size, sha256)``: what ``save`` (or ``put``) wrote.
- ``StoredStream``: an open stored file (a readable binary stream) with its ``size``.
- ``EvidenceStorage``: the protocol (``save``, ``put``, ``open``, ``read``, ``size``,
  ``exists``, ``delete``, ``keys``, ``location``).
- ``LocalStorage(root)``: files under ``root`` in sharded folders; ``path(key)``.
- ``open_storage(settings)``: the backend the settings name (``EVIDENCE_STORAGE``).
- ``is_valid_key(key) -> bool``, ``new_key() -> str``, ``BACKENDS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from portal.scans.errors import EvidenceRefused
from portal.scans.limits import megabytes

CHUNK_BYTES = 1024 * 1024
BACKENDS = ("local", "s3")
# "ab/cd/" + 32 hex digits: 128 random bits, two levels of 256 folders each.
_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}")


@dataclass(frozen=True)
class StoredFile:
    """A file ``save`` wrote: its storage key, its size in bytes and its SHA-256 (hex)."""

    key: str
    size: int
    sha256: str


class StoredStream(io.RawIOBase):
    """An open stored file, read in chunks; ``size`` is its length in bytes.

    Wraps whatever the backend opened (a local file, an S3 response body) so that callers see
    one kind of object: ``read(n)``, iteration in ``CHUNK_BYTES`` pieces, ``close()``, a
    context manager, and ``fileno()`` when the bytes are a local file (so a WSGI server may
    use ``sendfile``).
    """

    def __init__(self, raw, size: int) -> None:
        super().__init__()
        self._raw = raw
        self.size = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._raw.read() if size is None or size < 0 else self._raw.read(size)

    def readall(self) -> bytes:
        return self._raw.read()

    def fileno(self) -> int:
        fileno = getattr(self._raw, "fileno", None)
        if fileno is None:
            raise io.UnsupportedOperation("not a local file")
        return fileno()

    def chunks(self, size: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The rest of the file, ``size`` bytes at a time."""
        while chunk := self._raw.read(size):
            yield chunk

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._raw.close()
        super().close()


@runtime_checkable
class EvidenceStorage(Protocol):
    """What the portal needs from a place to keep evidence files."""

    location: str  # where the files are, for people and manifests ("file:///…", "s3://…")

    def save(self, content: bytes | BinaryIO, *, max_bytes: int | None = None) -> StoredFile:
        """Store ``content`` under a new random key; refuse ``too_large`` past ``max_bytes``
        and ``empty`` for no bytes (nothing is kept either way)."""
        ...

    def put(self, key: str, content: bytes | BinaryIO) -> StoredFile:
        """Store ``content`` under the given storage key, replacing what was there (restoring
        a backup). Raises ValueError for anything that is not a storage key."""
        ...

    def open(self, key: str) -> StoredStream:
        """Open the stored file for reading; raise ``FileNotFoundError`` if absent."""
        ...

    def read(self, key: str) -> bytes:
        """Return the stored file's bytes; raise ``FileNotFoundError`` if absent."""
        ...

    def size(self, key: str) -> int:
        """The stored file's size in bytes; raise ``FileNotFoundError`` if absent."""
        ...

    def exists(self, key: str) -> bool:
        """True when a file is stored under ``key`` (False for anything not a storage key)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the file; removing a missing file is not an error."""
        ...

    def keys(self) -> Iterator[str]:
        """Every storage key with a file behind it (in no particular order)."""
        ...


def is_valid_key(key: object) -> bool:
    """True when ``key`` has the shape storage keys have (so it cannot name any other path)."""
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


def check_key(key: object) -> str:
    """Return ``key`` if it is a storage key; raise ValueError otherwise."""
    if not is_valid_key(key):
        raise ValueError("not a storage key")
    return key  # type: ignore[return-value]


def new_key() -> str:
    """Return a fresh random storage key (``ab/cd/abcd…``, 38 characters)."""
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token[2:4]}/{token}"


def chunks(content: bytes | BinaryIO) -> Iterator[bytes]:
    """``content`` (bytes or a binary stream) in pieces of at most ``CHUNK_BYTES``."""
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content)
        for start in range(0, len(view), CHUNK_BYTES):
            yield view[start : start + CHUNK_BYTES]
        return
    while chunk := content.read(CHUNK_BYTES):
        yield chunk


class Measured:
    """Counts and hashes bytes on their way into storage, refusing them past ``max_bytes``."""

    def __init__(self, max_bytes: int | None) -> None:
        self.max_bytes = max_bytes
        self.digest = hashlib.sha256()
        self.size = 0

    def take(self, chunk) -> None:
        """Account for one chunk; raise ``too_large`` once more than ``max_bytes`` arrived."""
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise EvidenceRefused("too_large", limit_mb=megabytes(self.max_bytes))
        self.digest.update(chunk)

    def finish(self, key: str) -> StoredFile:
        """The stored file; raise ``empty`` when no bytes arrived."""
        if self.size == 0:
            raise EvidenceRefused("empty")
        return StoredFile(key=key, size=self.size, sha256=self.digest.hexdigest())


class LocalStorage:
    """Evidence files under ``root`` (``UPLOAD_DIR``), written atomically.

    A write goes to a temporary file in the target folder, is flushed and fsynced, then renamed
    into place with ``os.replace``, so a reader never sees half a file and a crash leaves at
    most a stray ``.tmp-`` file. ``root`` must not lie inside a folder named ``static``.
    Only one host can read these files: several hosts need ``S3Storage``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        resolved = Path(root).resolve()
        if "static" in (part.lower() for part in resolved.parts):
            raise ValueError(f"evidence must not be stored below a static folder: {resolved}")
        self.root = resolved
        self.location = resolved.as_uri()

    def path(self, key: str) -> Path:
        """Return the local path of ``key``; refuse anything that is not a storage key."""
        return self.root / check_key(key)

    def save(self, content: bytes | BinaryIO, *, max_bytes: int | None = None) -> StoredFile:
        """Store ``content`` (bytes or a binary stream, read in chunks) under a new random key.

        Computes the SHA-256 while writing; refuses with ``too_large`` as soon as more than
        ``max_bytes`` arrive (nothing is kept) and with ``empty`` for no bytes at all.
        """
        return self._write(new_key(), content, max_bytes)

    def put(self, key: str, content: bytes | BinaryIO) -> StoredFile:
        """Store ``content`` under ``key`` (a storage key), replacing any file there."""
        return self._write(check_key(key), content, None)

    def _write(self, key: str, content: bytes | BinaryIO, max_bytes: int | None) -> StoredFile:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        measured = Measured(max_bytes)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(descriptor, "wb") as out:
                for chunk in chunks(content):
                    measured.take(chunk)
                    out.write(chunk)
                stored = measured.finish(key)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _fsync_directory(target.parent)
        return stored

    def open(self, key: str) -> StoredStream:
        """Open the stored file for reading."""
        handle = self.path(key).open("rb")
        return StoredStream(handle, os.fstat(handle.fileno()).st_size)

    def read(self, key: str) -> bytes:
        """Return the stored file's bytes."""
        return self.path(key).read_bytes()

    def size(self, key: str) -> int:
        """The stored file's size in bytes."""
        return self.path(key).stat().st_size

    def exists(self, key: str) -> bool:
        """True when ``key`` is a storage key with a file behind it."""
        return is_valid_key(key) and self.path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the stored file, if it is there."""
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def keys(self) -> Iterator[str]:
        """Every stored key (temporary files of unfinished writes are not keys)."""
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            key = path.relative_to(self.root).as_posix()
            if is_valid_key(key) and path.is_file():
                yield key


def open_storage(settings: Mapping) -> EvidenceStorage:
    """The evidence store that ``settings`` (the app's config) describe.

    ``EVIDENCE_STORAGE`` is ``local`` (files under ``UPLOAD_DIR``) or ``s3`` (the bucket
    ``S3_BUCKET`` under ``S3_PREFIX``, at ``S3_ENDPOINT_URL`` if set, with the ``S3_*``
    timeouts; credentials from boto3's usual sources). Raises ValueError for anything else.
    """
    backend = settings.get("EVIDENCE_STORAGE") or "local"
    if backend == "local":
        return LocalStorage(settings["UPLOAD_DIR"])
    if backend == "s3":
        from portal.scans.storage_s3 import S3Storage

        return S3Storage.from_settings(settings)
    raise ValueError(f"EVIDENCE_STORAGE {backend!r} is not one of {', '.join(BACKENDS)}")


def _fsync_directory(folder: Path) -> None:
    # The rename is only durable once the folder's entry is on disk too.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
