import io
import os

import pytest

from portal.scans.errors import EvidenceRefused
from portal.scans.fingerprints import sha256_hex
from portal.scans.storage import EvidenceStorage, LocalStorage, is_valid_key


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "uploads")


def test_saved_bytes_come_back_under_a_random_sharded_key(storage):
    stored = storage.save(b"invoice bytes")
    assert is_valid_key(stored.key)
    assert stored.size == 13
    assert stored.sha256 == sha256_hex(b"invoice bytes")
    assert storage.read(stored.key) == b"invoice bytes"
    with storage.open(stored.key) as handle:
        assert handle.read() == b"invoice bytes"
    assert storage.path(stored.key) == storage.root / stored.key
    assert storage.save(b"invoice bytes").key != stored.key


def test_a_stream_is_stored_in_chunks_with_its_hash(storage):
    content = os.urandom(3 * 1024 * 1024 + 5)
    stored = storage.save(io.BytesIO(content), max_bytes=4 * 1024 * 1024)
    assert stored.size == len(content)
    assert stored.sha256 == sha256_hex(content)


def test_too_much_data_is_refused_and_nothing_is_left_behind(storage):
    with pytest.raises(EvidenceRefused) as refused:
        storage.save(io.BytesIO(b"x" * 2_000_000), max_bytes=1_000_000)
    assert refused.value.code == "too_large"
    assert not [path for path in storage.root.rglob("*") if path.is_file()]


def test_an_empty_upload_is_refused(storage):
    with pytest.raises(EvidenceRefused) as refused:
        storage.save(io.BytesIO(b""))
    assert refused.value.code == "empty"
    assert not [path for path in storage.root.rglob("*") if path.is_file()]


@pytest.mark.parametrize(
    "key", ["../../etc/passwd", "/etc/passwd", "ab/cd/../../x", "AB/CD/" + "A" * 32, "", None]
)
def test_only_storage_keys_name_files(storage, key):
    assert not storage.exists(key)
    with pytest.raises(ValueError):
        storage.path(key)


def test_delete_removes_and_tolerates_missing_files(storage):
    stored = storage.save(b"x")
    storage.delete(stored.key)
    assert not storage.exists(stored.key)
    storage.delete(stored.key)


def test_files_are_never_stored_below_a_static_folder(tmp_path):
    with pytest.raises(ValueError):
        LocalStorage(tmp_path / "static" / "uploads")


def test_local_storage_implements_the_protocol(storage):
    assert isinstance(storage, EvidenceStorage)
