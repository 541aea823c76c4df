from decimal import Decimal

import pytest
from PIL import Image, ImageFilter

from portal.scans.qr import find_invoice_qr, read_qr_texts
from tests.scans import corpus

SAMPLE = corpus.BEIJING_E_ORDINARY


def photo(page_width: int = 1700, **distortion) -> Image.Image:
    page = corpus.invoice_page(SAMPLE)
    return corpus.phone_photo(page, size=(2000, 1500), page_width=page_width, **distortion)


VARIANTS = {
    "clean scan": lambda: corpus.invoice_page(SAMPLE),
    "photo": lambda: photo(),
    "turned 90°": lambda: photo(angle=90, page_width=1150),
    "upside down": lambda: photo(angle=180),
    "skewed 12°": lambda: photo(angle=12),
    "dim": lambda: photo(brightness=0.35, noise=4),
    "noisy": lambda: photo(noise=28),
    "out of focus": lambda: photo().filter(ImageFilter.GaussianBlur(2)),
    "large QR": lambda: corpus.qr_image(SAMPLE.qr_text, module_px=40),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_invoice_qr_is_read_from_every_corpus_variant(variant):
    reading = find_invoice_qr(VARIANTS[variant]())
    assert reading is not None and reading.ok, variant
    assert reading.text == SAMPLE.qr_text
    assert reading.payload.identity.key == f"{SAMPLE.code}-{SAMPLE.number}"
    assert reading.payload.amount_excluding_tax == SAMPLE.amount
    assert reading.payload.issue_date == SAMPLE.issue_date
    assert reading.payload.check_code == SAMPLE.check_code


def test_a_large_picture_is_read_downscaled_first():
    reading = find_invoice_qr(photo())
    assert reading.where == "downscaled"
    left, top, right, bottom = reading.box
    # The box is in the coordinates of the picture passed in, around the top-left QR code.
    assert 100 < left < right < 600 and 100 < top < bottom < 600


def test_full_resolution_is_decoded_only_when_smaller_passes_fail():
    calls = []
    tiny = corpus.qr_image(SAMPLE.qr_text, module_px=1)

    def full_resolution():
        calls.append(1)
        return tiny.resize((tiny.width * 6, tiny.height * 6), Image.Resampling.NEAREST)

    blurred = tiny.resize((tiny.width // 2, tiny.height // 2))
    reading = find_invoice_qr(blurred, full_resolution=full_resolution)
    assert calls == [1]
    assert reading.ok and reading.where == "full"
    assert find_invoice_qr(photo(), full_resolution=full_resolution).where == "downscaled"
    assert calls == [1]


def test_the_invoice_qr_is_picked_among_other_codes():
    page = corpus.invoice_page(SAMPLE)
    page.paste(corpus.qr_image("https://pay.example.com/shop/1234567890", module_px=8), (500, 300))
    assert len(read_qr_texts(page)) == 2
    reading = find_invoice_qr(page)
    assert reading.ok and reading.text == SAMPLE.qr_text


def test_a_picture_without_an_invoice_qr_gives_nothing():
    assert find_invoice_qr(corpus.invoice_page(SAMPLE, qr=False)) is None
    only_payment = corpus.qr_image("https://pay.example.com/shop/1", module_px=8)
    assert find_invoice_qr(only_payment) is None


def test_an_invoice_like_qr_that_breaks_a_rule_comes_back_with_the_reason():
    broken = corpus.qr_image("01,10,0110024001,12345678,100.00,20240514,,8BDD,", module_px=8)
    reading = find_invoice_qr(broken)
    assert reading is not None and not reading.ok
    assert reading.error.code == "code_shape"
    assert "发票代码" in reading.error.message()


def test_a_digital_invoice_qr_carries_the_total():
    reading = find_invoice_qr(corpus.qr_image(corpus.BEIJING_DIGITAL.qr_text, module_px=6))
    assert reading.payload.total == Decimal("50.00")
    assert reading.payload.identity.is_beijing
