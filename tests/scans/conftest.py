"""Fixtures for the evidence tests: the generated corpus, made once per run (it takes seconds)."""

from __future__ import annotations

import os
import shutil

import pytest

from portal.scans import OcrPolicy, ScanLimits
from tests.scans import corpus


@pytest.fixture(scope="session")
def no_ocr() -> ScanLimits:
    """Limits that never run OCR, for tests about everything else (OCR costs ~1 s a page)."""
    return ScanLimits(ocr=OcrPolicy.NEVER)


@pytest.fixture(scope="session")
def legacy_page():
    """A clean scan of a Beijing e-普票 (1400 × 900), QR code top left."""
    return corpus.invoice_page(corpus.BEIJING_E_ORDINARY)


@pytest.fixture(scope="session")
def phone_jpeg(legacy_page) -> bytes:
    """A 12-megapixel phone photo (4000 × 3000 JPEG) of the e-普票, slightly turned and noisy."""
    photo = corpus.phone_photo(legacy_page, angle=2.0, noise=10.0)
    return corpus.encode(photo, "JPEG", quality=90)


@pytest.fixture(scope="session")
def small_qr_jpeg(legacy_page) -> bytes:
    """A 12-megapixel photo where the invoice is far away: its QR code is ~110 pixels wide,
    too small to read at display size (only the full-resolution pass finds it)."""
    page = corpus.invoice_page(corpus.BEIJING_E_ORDINARY, width=1400, qr_module_px=3)
    photo = corpus.phone_photo(page, page_width=1100, noise=4.0)
    return corpus.encode(photo, "JPEG", quality=92)


@pytest.fixture
def jbig2dec() -> None:
    """For tests of JBIG2 QR codes: Debian's jbig2dec must be there (scripts/setup-system
    installs it as root); without it they are skipped, named, except in CI, which needs it."""
    if shutil.which("jbig2dec") is None:
        reason = "jbig2dec is not installed (apt-get install jbig2dec): JBIG2 QR codes unread"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
