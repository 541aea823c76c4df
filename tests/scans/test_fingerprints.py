import io

import pytest
from PIL import Image

from portal.scans.fingerprints import (
    PERCEPTUAL_HASH_BITS,
    hamming_distance,
    is_near_duplicate,
    perceptual_hash,
    sha256_hex,
)
from tests.scans import corpus


@pytest.fixture(scope="module")
def photos(legacy_page):
    photo = corpus.phone_photo(legacy_page, size=(1600, 1200), page_width=1400, noise=6)
    recompressed = Image.open(
        io.BytesIO(corpus.encode(photo.resize((800, 600)), "JPEG", quality=40))
    )
    other = corpus.phone_photo(
        corpus.invoice_page(corpus.BEIJING_DIGITAL), size=(1600, 1200), page_width=1400, noise=6
    )
    return photo, recompressed, other


def test_sha256_is_hex_of_the_bytes():
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_perceptual_hash_is_128_bits_of_hex(photos):
    value = perceptual_hash(photos[0])
    assert len(value) == PERCEPTUAL_HASH_BITS // 4 == 32
    int(value, 16)


def test_the_same_picture_recompressed_and_halved_is_a_near_duplicate(photos):
    photo, recompressed, _ = photos
    assert is_near_duplicate(perceptual_hash(photo), perceptual_hash(recompressed))


def test_another_invoice_layout_is_not_a_near_duplicate(photos):
    photo, _, other = photos
    assert not is_near_duplicate(perceptual_hash(photo), perceptual_hash(other))


def test_hamming_distance_counts_differing_bits():
    assert hamming_distance("00", "00") == 0
    assert hamming_distance("0f", "f0") == 8
    with pytest.raises(ValueError):
        hamming_distance("00", "000")


def test_missing_hashes_are_never_near_duplicates():
    assert not is_near_duplicate(None, "00")
    assert not is_near_duplicate("00", "")
    assert not is_near_duplicate("00", "000")
