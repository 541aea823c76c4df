"""Fingerprints for spotting duplicate evidence: the same file, or the same picture re-encoded.

A SHA-256 matches identical bytes. A perceptual hash matches a picture that was re-compressed,
resized or re-sent through a chat app. Invoices of one template look alike at this scale, so a
near-duplicate picture is a hint for a reviewer (compare the invoice numbers), not a verdict.

Public API:

- ``sha256_hex(data) -> str``.
- ``PERCEPTUAL_HASH_BITS``: 128; ``perceptual_hash(image) -> str``: 32 hex digits.
- ``hamming_distance(a, b) -> int``: how many bits differ between two perceptual hashes.
- ``NEAR_DUPLICATE_DISTANCE``: 10; ``is_near_duplicate(a, b, *, max_distance=...) -> bool``.
"""

from __future__ import annotations

import hashlib

from PIL import Image

# A difference hash over a 16 × 8 grid: each bit says whether brightness rises from one cell to
# the next along a row. 16 columns (not the classic 8) tell apart more layouts of printed text.
_GRID_WIDTH, _GRID_HEIGHT = 16, 8
PERCEPTUAL_HASH_BITS = _GRID_WIDTH * _GRID_HEIGHT
# Measured on the test corpus: re-encoding and halving a photo moves 2-4 bits; a different
# photo, or another invoice of the same template, moves 12 or more.
NEAR_DUPLICATE_DISTANCE = 10


def sha256_hex(data: bytes) -> str:
    """Return the SHA-256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def perceptual_hash(image: Image.Image) -> str:
    """Return a 128-bit difference hash of ``image`` as 32 lowercase hex digits.

    Pass the upright picture (EXIF orientation applied); its size does not matter, and a
    thumbnail gives the same answer as the full picture far faster.
    """
    gray = image.convert("L").resize(
        (_GRID_WIDTH + 1, _GRID_HEIGHT), Image.Resampling.BILINEAR, reducing_gap=2.0
    )
    pixels = gray.tobytes()
    value = 0
    for row in range(_GRID_HEIGHT):
        start = row * (_GRID_WIDTH + 1)
        for column in range(_GRID_WIDTH):
            value = (value << 1) | (pixels[start + column + 1] > pixels[start + column])
    return f"{value:0{PERCEPTUAL_HASH_BITS // 4}x}"


def hamming_distance(first: str, second: str) -> int:
    """Return how many bits differ between two perceptual hashes (hex strings of equal length)."""
    if len(first) != len(second):
        raise ValueError("perceptual hashes of different lengths cannot be compared")
    return (int(first, 16) ^ int(second, 16)).bit_count()


def is_near_duplicate(
    first: str | None, second: str | None, *, max_distance: int = NEAR_DUPLICATE_DISTANCE
) -> bool:
    """True when two perceptual hashes are within ``max_distance`` bits of each other.

    A missing hash (an XML file has no picture) is never a near duplicate.
    """
    if not first or not second or len(first) != len(second):
        return False
    return hamming_distance(first, second) <= max_distance
