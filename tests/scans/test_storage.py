"""The evidence storage interface, one suite for both backends: the local folder and an
S3-compatible bucket (moto's server, a stand-in for the real object store, over HTTP)."""

import io
import os
from pathlib import Path

import pytest

from portal.scans.errors import EvidenceRefused
from portal.scans.fingerprints import sha256_hex
from portal.scans.storage import (
    EvidenceStorage,
    LocalStorage,
    StoredStream,
    is_valid_key,
    open_storage,
)
from portal.scans.storage_s3 import SPOOL_BYTES, S3Storage

BAD_KEYS = ["../../etc/passwd", "/etc/passwd", "ab/cd/../../x", "AB/CD/" + "A" * 32, "", None]


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return open_storage({"EVIDENCE_STORAGE": "local", "UPLOAD_DIR": str(tmp_path / "up")})
    return open_storage(request.getfixturevalue("s3_server").new_bucket())


def everything_stored(storage) -> list[str]:
    """Every file or object the backend holds, keys or not (temporary files included)."""
    if isinstance(storage, LocalStorage):
        root = storage.root
        return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    pages = storage.client.get_paginator("list_objects_v2").paginate(Bucket=storage.bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", ())]


def test_saved_bytes_come_back_under_a_random_sharded_key(storage):
    stored = storage.save(b"invoice bytes")
    assert is_valid_key(stored.key)
    assert stored.size == 13
    assert stored.sha256 == sha256_hex(b"invoice bytes")
    assert storage.read(stored.key) == b"invoice bytes"
    assert storage.size(stored.key) == 13
    assert storage.exists(stored.key)
    with storage.open(stored.key) as handle:
        assert isinstance(handle, StoredStream)
        assert handle.size == 13
        assert handle.read() == b"invoice bytes"
    again = storage.save(b"invoice bytes")
    assert again.key != stored.key
    assert sorted(storage.keys()) == sorted([stored.key, again.key])


def test_a_stream_is_stored_in_chunks_with_its_hash(storage):
    # Larger than the S3 backend's in-memory spool, so that spills to disk on the way.
    content = os.urandom(SPOOL_BYTES + 3 * 1024 * 1024 + 5)
    stored = storage.save(io.BytesIO(content), max_bytes=len(content))
    assert stored.size == len(content)
    assert stored.sha256 == sha256_hex(content)
    assert storage.read(stored.key) == content


def test_a_stored_file_is_read_as_a_stream_a_piece_at_a_time(storage):
    content = os.urandom(3 * 1024 * 1024 + 7)
    stored = storage.save(content)
    with storage.open(stored.key) as handle:
        assert handle.size == len(content)
        assert handle.read(10) == content[:10]
        pieces = list(handle.chunks(1024 * 1024))
    assert b"".join(pieces) == content[10:]
    assert max(len(p) for p in pieces) <= 1024 * 1024
    assert handle.closed


def test_too_much_data_is_refused_and_nothing_is_left_behind(storage):
    with pytest.raises(EvidenceRefused) as refused:
        storage.save(io.BytesIO(b"x" * 2_000_000), max_bytes=1_000_000)
    assert refused.value.code == "too_large"
    with pytest.raises(EvidenceRefused):
        storage.save(b"x" * 2_000_000, max_bytes=1_000_000)
    assert everything_stored(storage) == []


def test_an_empty_upload_is_refused(storage):
    for empty in (io.BytesIO(b""), b""):
        with pytest.raises(EvidenceRefused) as refused:
            storage.save(empty)
        assert refused.value.code == "empty"
    assert everything_stored(storage) == []


@pytest.mark.parametrize("key", BAD_KEYS)
def test_only_storage_keys_name_files(storage, key):
    assert not storage.exists(key)
    for call in (storage.open, storage.read, storage.size, storage.delete):
        with pytest.raises(ValueError):
            call(key)
    with pytest.raises(ValueError):
        storage.put(key, b"x")
    assert everything_stored(storage) == []


def test_a_missing_file_is_file_not_found(storage):
    key = storage.save(b"x").key
    storage.delete(key)
    for call in (storage.open, storage.read, storage.size):
        with pytest.raises(FileNotFoundError):
            call(key)


def test_delete_removes_and_tolerates_missing_files(storage):
    stored = storage.save(b"x")
    kept = storage.save(b"y")
    storage.delete(stored.key)
    assert not storage.exists(stored.key)
    storage.delete(stored.key)
    assert list(storage.keys()) == [kept.key]


def test_put_stores_under_the_given_key_and_replaces(storage):
    key = storage.save(b"first").key
    stored = storage.put(key, io.BytesIO(b"restored from a backup"))
    assert stored.key == key and stored.sha256 == sha256_hex(b"restored from a backup")
    assert storage.read(key) == b"restored from a backup"
    assert list(storage.keys()) == [key]


def test_both_backends_implement_the_protocol(storage):
    assert isinstance(storage, EvidenceStorage)
    assert storage.location.startswith(("file:///", "s3://"))


# --------------------------------------------------------------------------- each backend


def test_files_are_never_stored_below_a_static_folder(tmp_path):
    with pytest.raises(ValueError):
        LocalStorage(tmp_path / "static" / "uploads")


def test_local_files_lie_under_the_root_by_key(tmp_path):
    storage = LocalStorage(tmp_path / "up")
    stored = storage.save(b"x")
    assert storage.path(stored.key) == storage.root / stored.key
    assert storage.location == Path(tmp_path / "up").resolve().as_uri()
    (storage.root / "ab" / "cd").mkdir(parents=True)
    (storage.root / "ab" / "cd" / ".tmp-half-written").write_bytes(b"x")
    assert list(storage.keys()) == [stored.key]  # an unfinished write is no file


def test_objects_are_named_by_prefix_and_key_with_their_hash(s3_server):
    storage = open_storage(s3_server.new_bucket())
    stored = storage.save(b"invoice")
    assert storage.location == f"s3://{storage.bucket}/evidence/"
    assert everything_stored(storage) == [f"evidence/{stored.key}"]
    head = storage.client.head_object(Bucket=storage.bucket, Key=f"evidence/{stored.key}")
    assert head["Metadata"] == {"sha256": stored.sha256}
    # Objects outside the prefix are not evidence.
    storage.client.put_object(Bucket=storage.bucket, Key=f"other/{stored.key}", Body=b"x")
    assert list(storage.keys()) == [stored.key]


def test_a_bucket_that_is_not_there_is_an_error_not_a_missing_file(s3_server):
    settings = {**s3_server.settings("portal-no-such-bucket")}
    storage = open_storage(settings)
    with pytest.raises(Exception) as raised:
        storage.open("ab/cd/" + "0" * 32)
    assert not isinstance(raised.value, FileNotFoundError)
    assert "NoSuchBucket" in str(raised.value)


def test_the_s3_client_has_the_configured_timeouts_and_endpoint(s3_server):
    settings = s3_server.new_bucket() | {"S3_CONNECT_TIMEOUT": 1.5, "S3_READ_TIMEOUT": 7.0}
    storage = open_storage(settings)
    assert isinstance(storage, S3Storage)
    config = storage.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7.0)
    assert config.retries["total_max_attempts"] == 3 and config.retries["mode"] == "standard"
    assert storage.client.meta.endpoint_url == s3_server.url


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="EVIDENCE_STORAGE"):
        open_storage({"EVIDENCE_STORAGE": "ftp", "UPLOAD_DIR": "x"})
    with pytest.raises(ValueError, match="S3_BUCKET"):
        open_storage({"EVIDENCE_STORAGE": "s3"})
