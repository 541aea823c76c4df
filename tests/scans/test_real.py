"""The five real invoices (tests/scans/real): every printed field right, through ``extract``
and through the OCR fallback, whatever the page's turn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from portal.scans import OcrPolicy, ScanLimits, extract
from portal.scans.layout import fields_from_words
from portal.scans.ocr import read_invoice_words
from portal.scans.pdf import render_page

REAL = Path(__file__).parent / "real"
EXPECTED: dict[str, dict[str, str | None]] = json.loads((REAL / "expected.json").read_text())


def wrong_fields(values: dict[str, str], expected: dict[str, str | None]) -> dict:
    """Printed fields read wrongly (or not at all); a field printed empty must not be read."""
    return {
        name: (value, values.get(name))
        for name, value in expected.items()
        if values.get(name) != value
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_printed_field_is_read(name):
    extraction = extract((REAL / name).read_bytes(), name)
    assert wrong_fields(extraction.values(), EXPECTED[name]) == {}
    assert extraction.readable
    assert not [
        check.code for check in extraction.checks if not check.ok and check.code != "beijing"
    ]


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.endswith(".pdf")))
def test_pdf_text_gives_what_the_qr_lacks_and_agrees_with_it(name):
    extraction = extract((REAL / name).read_bytes(), name, ScanLimits(ocr=OcrPolicy.NEVER))
    assert extraction.field("number").source == "qr"
    assert extraction.field("buyer_tax_id").source == "text"
    assert extraction.field("buyer_tax_id").where == "pdf-text"
    assert extraction.conflicts == ()
    assert {c.code: c.ok for c in extraction.checks}["totals"] is True


def test_the_ofd_is_read_from_its_attached_invoice_xml_first(jbig2dec):
    name = "e-invoice-2020-zhejiang.ofd"
    extraction = extract((REAL / name).read_bytes(), name)
    assert extraction.field("total").where == "ofd-attachment"
    assert extraction.field("total").source == "xml"
    # Its QR code is a JBIG2 image: decoded (by jbig2dec), and it agrees with the XML.
    assert extraction.qr.ok and extraction.qr.where == "ofd-image"
    assert extraction.conflicts == ()


def test_the_qingdao_qr_is_read_and_its_region_named():
    name = "digital-2024-qingdao.jpg"
    extraction = extract((REAL / name).read_bytes(), name, ScanLimits(ocr=OcrPolicy.NEVER))
    assert extraction.qr.ok
    assert extraction.field("number").source == "qr"
    beijing = {c.code: c for c in extraction.checks}["beijing"]
    assert not beijing.ok and "青岛" in beijing.message("zh_CN")


def qingdao_without_qr() -> Image.Image:
    page = Image.open(REAL / "digital-2024-qingdao.jpg").convert("RGB")
    ImageDraw.Draw(page).rectangle((20, 20, 170, 165), fill="white")  # the QR code, blanked
    return page


@pytest.mark.parametrize("turn", [0, 180, 270, -4])
def test_ocr_reads_the_real_page_at_any_turn(turn):
    page = qingdao_without_qr()
    if turn:
        page = page.rotate(turn, expand=True, fillcolor="white")
    values = {k: v.value for k, v in fields_from_words(read_invoice_words(page)).items()}
    expected = EXPECTED["digital-2024-qingdao.jpg"]
    assert wrong_fields(values, expected) == {}
    # Amount and tax from the spaced 合   计 row; the buyer (an individual) has no taxpayer ID,
    # and the seller's is not given to the buyer.
    assert (values["amount"], values["tax"]) == ("201.89", "12.11")
    assert values["seller_tax_id"] == "91370283MACQY48L1U"
    assert values["buyer_name"] == "姜浩然"


def test_the_ocr_fallback_reads_a_real_photo_without_its_qr_code():
    from tests.scans import corpus

    data = corpus.encode(qingdao_without_qr(), "JPEG", quality=92)
    extraction = extract(data, "qingdao.jpg")
    assert extraction.ocr_used and extraction.qr is None
    assert wrong_fields(extraction.values(), EXPECTED["digital-2024-qingdao.jpg"]) == {}
    assert extraction.field("number").source == "ocr"


def test_ocr_reads_a_real_legacy_page_with_its_cipher_block():
    name = "e-ordinary-2018-didi.pdf"
    page = render_page((REAL / name).read_bytes())
    values = {k: v.value for k, v in fields_from_words(read_invoice_words(page)).items()}
    assert wrong_fields(values, EXPECTED[name]) == {}
    assert values["seller_tax_id"] == "911201163409833307"
