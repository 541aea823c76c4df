"""Evidence files in an S3-compatible bucket, shared by every web and worker host.

Any service speaking the S3 API will do: Amazon S3, the S3-compatible endpoints of the Chinese
clouds (Alibaba OSS, Tencent COS, Huawei OBS), or a MinIO or Ceph cluster of the company's own.
Objects are named ``S3_PREFIX`` + the storage key (``evidence/ab/cd/abcd…``), so the bucket's
layout is the local folder's, and a backup's ``files/`` folder maps onto it one to one.

A PUT is atomic in S3 (an object is either all there or not at all), so a reader never sees
half a file. Content arriving as a stream is spooled (in memory up to 8 MB, then on disk)
while it is counted and hashed, so a file that is too large or empty is refused before
anything is sent. The SHA-256 travels with the object as ``x-amz-meta-sha256``. Every call has
a connect and a read timeout, and botocore's standard retry mode (3 attempts) for transient
errors. Credentials come from boto3's usual sources (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, a shared credentials file, an instance role), never our settings.

Public API: ``S3Storage(bucket, *, client, prefix)``, ``S3Storage.from_settings(settings)``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from portal.scans.storage import (
    CHUNK_BYTES,
    Measured,
    StoredFile,
    StoredStream,
    check_key,
    chunks,
    is_valid_key,
    new_key,
)

SPOOL_BYTES = 8 * 1024 * 1024
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def make_client(settings: Mapping):
    """A boto3 S3 client for ``settings`` (endpoint, region, addressing style, timeouts)."""
    import boto3
    from botocore.config import Config

    style = settings.get("S3_ADDRESSING_STYLE") or "auto"
    config = Config(
        connect_timeout=float(settings.get("S3_CONNECT_TIMEOUT") or 3.05),
        read_timeout=float(settings.get("S3_READ_TIMEOUT") or 30.0),
        retries={"total_max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": style},
        # Many S3-compatible services refuse the integrity headers newer boto3 sends by
        # default; we hash every file ourselves.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.get("S3_ENDPOINT_URL") or None,
        region_name=settings.get("S3_REGION") or None,
        config=config,
    )


class S3Storage:
    """Evidence files as objects ``prefix + key`` in ``bucket``, through a boto3 ``client``."""

    def __init__(self, bucket: str, *, client, prefix: str = "evidence/") -> None:
        if not bucket:
            raise ValueError("S3_BUCKET is not set")
        self.bucket = bucket
        self.prefix = prefix
        self.client = client
        self.location = f"s3://{bucket}/{prefix}"

    @classmethod
    def from_settings(cls, settings: Mapping) -> S3Storage:
        """The bucket the app's ``S3_*`` settings name."""
        prefix = settings.get("S3_PREFIX")
        return cls(
            settings.get("S3_BUCKET") or "",
            client=make_client(settings),
            prefix="evidence/" if prefix is None else prefix,
        )

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def save(self, content: bytes | BinaryIO, *, max_bytes: int | None = None) -> StoredFile:
        """Store ``content`` under a new random key (counted and hashed first; refused with
        ``too_large`` past ``max_bytes`` or ``empty``, and then nothing is sent)."""
        return self._write(new_key(), content, max_bytes)

    def put(self, key: str, content: bytes | BinaryIO) -> StoredFile:
        """Store ``content`` under ``key`` (a storage key), replacing any object there."""
        return self._write(check_key(key), content, None)

    def _write(self, key: str, content: bytes | BinaryIO, max_bytes: int | None) -> StoredFile:
        measured = Measured(max_bytes)
        if isinstance(content, bytes | bytearray | memoryview):
            for chunk in chunks(content):
                measured.take(chunk)
            stored = measured.finish(key)
            self._put_object(key, bytes(content), stored)
            return stored
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            for chunk in chunks(content):
                measured.take(chunk)
                spool.write(chunk)
            stored = measured.finish(key)
            spool.seek(0)
            self._put_object(key, spool, stored)
        return stored

    def _put_object(self, key: str, body, stored: StoredFile) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._name(key),
            Body=body,
            ContentLength=stored.size,
            ContentType="application/octet-stream",
            Metadata={"sha256": stored.sha256},
        )

    def open(self, key: str) -> StoredStream:
        """Open the object for reading: its body is streamed, never read whole."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except self.client.exceptions.ClientError as error:
            _raise_if_missing(error, key)
            raise
        return StoredStream(answer["Body"], int(answer["ContentLength"]))

    def read(self, key: str) -> bytes:
        """Return the object's bytes."""
        with self.open(key) as stream:
            return b"".join(stream.chunks(CHUNK_BYTES))

    def size(self, key: str) -> int:
        """The object's size in bytes."""
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except self.client.exceptions.ClientError as error:
            _raise_if_missing(error, key)
            raise
        return int(answer["ContentLength"])

    def exists(self, key: str) -> bool:
        """True when ``key`` is a storage key with an object behind it."""
        if not is_valid_key(key):
            return False
        try:
            self.size(key)
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        """Remove the object (S3 answers a DELETE of a missing object with success too)."""
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def keys(self) -> Iterator[str]:
        """Every storage key under the prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.prefix) :]
                if is_valid_key(key):
                    yield key


def _raise_if_missing(error, key: str) -> None:
    # GET says NoSuchKey; HEAD has no body, so botocore reports the bare status, "404".
    if str(error.response.get("Error", {}).get("Code", "")) in _MISSING:
        raise FileNotFoundError(f"no stored file {key}") from error
