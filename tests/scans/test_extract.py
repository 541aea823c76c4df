import importlib
import io
import json
import random
from dataclasses import replace

import pytest
from PIL import Image

from portal.scans import (
    EvidenceRefused,
    FieldSource,
    FileKind,
    OcrPolicy,
    ScanLimits,
    extract,
    hamming_distance,
    is_near_duplicate,
    sha256_hex,
)
from portal.scans.layout import words_from_lines
from tests.scans import corpus

LEGACY = corpus.BEIJING_E_ORDINARY
QR_FIELDS = {
    "code": LEGACY.code,
    "number": LEGACY.number,
    "kind": "e_ordinary",
    "issue_date": "2024-05-14",
    "amount": "100.00",
    "check_code": LEGACY.check_code,
}
ALL_LEGACY_FIELDS = QR_FIELDS | {
    "tax": "13.00",
    "total": "113.00",
    "buyer_tax_id": LEGACY.buyer_tax_id,
    "buyer_name": LEGACY.buyer_name,
    "seller_tax_id": LEGACY.seller_tax_id,
    "seller_name": LEGACY.seller_name,
}


def check_codes(extraction) -> dict[str, bool]:
    return {check.code: check.ok for check in extraction.checks}


# ---- the corpus, end to end -----------------------------------------------------------------


def test_a_phone_photo_gives_the_qr_fields_fast_and_a_clean_preview(phone_jpeg):
    extraction = extract(phone_jpeg, "IMG_2024.JPG")
    assert extraction.kind is FileKind.JPEG and extraction.media_type == "image/jpeg"
    assert extraction.values() == QR_FIELDS
    assert {field.source for field in extraction.fields} == {FieldSource.QR}
    assert extraction.qr.where == "downscaled"
    assert not extraction.ocr_used
    assert check_codes(extraction) == {"beijing": True}
    assert extraction.sha256 == sha256_hex(phone_jpeg)
    assert len(extraction.perceptual_hash) == 32
    assert extraction.preview.media_type == "image/jpeg"
    assert (extraction.preview.width, extraction.preview.height) == (2000, 1500)
    assert extraction.thumbnail.width == 320
    assert set(extraction.timings_ms) >= {"sniff", "normalise", "qr", "display", "checks"}


def test_a_small_qr_code_is_found_at_full_resolution(small_qr_jpeg, no_ocr):
    extraction = extract(small_qr_jpeg, "far.jpg", no_ocr)
    assert extraction.qr.where == "full"
    assert extraction.values() == QR_FIELDS


def test_a_heic_photo_taken_sideways_with_gps_comes_out_upright_and_clean(legacy_page, no_ocr):
    stored = legacy_page.transpose(Image.Transpose.ROTATE_90)
    data = corpus.encode(stored, "HEIF", exif=corpus.gps_exif(orientation=6))
    extraction = extract(data, "IMG_0042.HEIC", no_ocr)
    assert extraction.kind is FileKind.HEIC
    assert extraction.values() == QR_FIELDS
    preview = Image.open(io.BytesIO(extraction.preview.data))
    assert preview.size == legacy_page.size
    assert not preview.getexif()


def test_a_pdf_is_read_exactly_and_previewed_as_png():
    extraction = extract(corpus.invoice_pdf(LEGACY), "电子发票.pdf")
    assert extraction.values() == ALL_LEGACY_FIELDS
    by_name = {field.name: field for field in extraction.fields}
    assert by_name["number"].source is FieldSource.QR
    assert by_name["buyer_tax_id"].source is FieldSource.TEXT
    assert all(field.confidence == 1.0 for field in extraction.fields)
    assert check_codes(extraction) == {"beijing": True, "totals": True, "buyer_tax_id": True}
    assert extraction.all_checks_pass
    assert extraction.preview.media_type == "image/png"
    assert extraction.preview.data.startswith(b"\x89PNG")
    assert extraction.pages == 1
    assert not extraction.ocr_used


def test_a_pdf_whose_qr_code_disagrees_with_its_text_is_flagged():
    other = replace(LEGACY, number="87654321")
    extraction = extract(corpus.invoice_pdf(LEGACY, qr_sample=other), "x.pdf")
    assert extraction.value("number") == "87654321"
    assert check_codes(extraction)["sources_agree"] is False
    assert "发票号码" in next(c for c in extraction.checks if c.code == "sources_agree").message()


def test_an_ofd_is_read_from_its_custom_datas():
    sample = corpus.BEIJING_DIGITAL
    extraction = extract(corpus.invoice_ofd(sample), "invoice.ofd")
    assert extraction.kind is FileKind.OFD
    assert extraction.value("number") == sample.number
    assert extraction.value("kind") == "digital_ordinary"
    assert extraction.field("kind").source is FieldSource.QR
    assert extraction.field("tax").source is FieldSource.XML
    assert extraction.all_checks_pass
    assert extraction.preview is None and extraction.perceptual_hash is None


def test_an_xml_from_another_region_is_read_and_flagged():
    sample = corpus.SHANGHAI_DIGITAL
    extraction = extract(corpus.einvoice_xml(sample), "dzfp_24312000000136634917.xml")
    assert extraction.value("number") == sample.number
    assert extraction.value("kind") == "digital"
    assert {field.source for field in extraction.fields} == {FieldSource.XML}
    assert check_codes(extraction) == {"beijing": False, "totals": True, "buyer_tax_id": True}


def test_without_a_qr_code_ocr_reads_the_page():
    page = corpus.invoice_page(LEGACY, qr=False, width=1000)
    extraction = extract(corpus.encode(page, "PNG"), "scan.png")
    assert extraction.ocr_used and extraction.qr is None
    assert extraction.values() == ALL_LEGACY_FIELDS
    assert {field.source for field in extraction.fields} == {FieldSource.OCR}
    assert all(0.5 < field.confidence <= 1.0 for field in extraction.fields)
    assert extraction.all_checks_pass


def test_ocr_can_be_switched_off(no_ocr):
    page = corpus.invoice_page(LEGACY, qr=False, width=600)
    extraction = extract(corpus.encode(page, "PNG"), "scan.png", no_ocr)
    assert not extraction.ocr_used
    assert extraction.fields == ()
    assert check_codes(extraction) == {"found": False}


def test_ocr_always_completes_the_qr_fields_and_the_qr_wins_disagreements(small_page, monkeypatch):
    printed = [
        ("发票号码：12345679", 0.93),
        ("合计 ¥100.00 ¥13.00", 0.91),
        ("价税合计（小写）¥113.00", 0.9),
        ("购买方 纳税人识别号：911101017967003199", 0.88),
    ]
    # The package re-exports the function ``extract``, which hides the module of that name.
    monkeypatch.setattr(
        importlib.import_module("portal.scans.extract"),
        "read_invoice_words",
        lambda image: words_from_lines(printed),
    )
    extraction = extract(
        corpus.encode(small_page, "JPEG"), "a.jpg", ScanLimits(ocr=OcrPolicy.ALWAYS)
    )
    assert extraction.ocr_used
    assert extraction.field("number").source is FieldSource.QR
    assert extraction.value("number") == LEGACY.number
    assert extraction.field("tax").source is FieldSource.OCR
    assert extraction.field("tax").confidence == 0.91
    assert extraction.value("buyer_tax_id") == LEGACY.buyer_tax_id
    assert check_codes(extraction) == {
        "beijing": True,
        "totals": True,
        "buyer_tax_id": True,
        "sources_agree": False,
    }


def test_the_same_picture_re_encoded_is_a_near_duplicate_with_another_sha(phone_jpeg, no_ocr):
    first = extract(phone_jpeg, "a.jpg", no_ocr)
    smaller = Image.open(io.BytesIO(phone_jpeg)).reduce(3)
    second = extract(corpus.encode(smaller, "JPEG", quality=50), "b.jpg", no_ocr)
    assert first.sha256 != second.sha256
    assert hamming_distance(first.perceptual_hash, second.perceptual_hash) <= 6
    assert is_near_duplicate(first.perceptual_hash, second.perceptual_hash)


def test_the_result_serialises_to_json(phone_jpeg, no_ocr):
    stored = json.loads(json.dumps(extract(phone_jpeg, "a.jpg", no_ocr).to_json()))
    assert stored["kind"] == "jpeg"
    assert stored["qr"] == {
        "text": LEGACY.qr_text,
        "ok": True,
        "where": "downscaled",
        "error": None,
    }
    assert {
        "name": "number",
        "value": LEGACY.number,
        "source": "qr",
        "where": "downscaled",
        "confidence": 1.0,
    } in (stored["fields"])
    assert stored["checks"][0]["message"]["en"] == "The invoice was issued in Beijing."


# ---- hostile files: each refused clearly or handled safely ----------------------------------


@pytest.fixture(scope="module")
def small_page(legacy_page):
    return legacy_page.resize((700, 450))


REFUSED = {
    "0 bytes": (lambda page: b"", "photo.jpg", "empty"),
    "truncated JPEG": (lambda page: corpus.encode(page, "JPEG")[:4000], "photo.jpg", "corrupt"),
    "40,000 × 40,000 PNG bomb": (lambda page: corpus.png_bomb(), "scan.png", "too_many_pixels"),
    "SVG": (lambda page: corpus.SVG, "invoice.svg", "active_content"),
    "SVG renamed .xml": (lambda page: corpus.SVG, "invoice.xml", "active_content"),
    "HTML renamed .jpg": (lambda page: corpus.HTML_PAGE, "photo.jpg", "active_content"),
    "PDF with JavaScript": (
        lambda page: corpus.invoice_pdf(
            LEGACY, catalog_extra="/OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >>"
        ),
        "invoice.pdf",
        "active_content",
    ),
    "XML entity expansion": (lambda page: corpus.BILLION_LAUGHS, "invoice.xml", "xml_entities"),
    "XML external entity": (lambda page: corpus.EXTERNAL_ENTITY, "invoice.xml", "xml_entities"),
    "25 MB file": (
        lambda page: corpus.encode(page, "JPEG") + bytes(25 * 1024 * 1024),
        "photo.jpg",
        "too_large",
    ),
    "PNG named .jpg": (lambda page: corpus.encode(page, "PNG"), "photo.jpg", "extension_mismatch"),
    "GIF": (lambda page: corpus.encode(page, "GIF"), "photo.gif", "unsupported_type"),
    "Word file named .ofd": (
        lambda page: corpus.zip_bytes({"word/document.xml": b"<w/>"}),
        "x.ofd",
        "not_ofd",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_hostile_files_are_refused_with_a_clear_reason(small_page, case):
    make, name, code = REFUSED[case]
    with pytest.raises(EvidenceRefused) as refused:
        extract(make(small_page), name)
    assert refused.value.code == code
    assert refused.value.message("zh_CN") and refused.value.message("en")


def test_the_size_limit_is_a_setting(small_page, no_ocr):
    data = corpus.encode(small_page, "JPEG")
    with pytest.raises(EvidenceRefused) as refused:
        extract(data, "a.jpg", replace(no_ocr, max_bytes=len(data) - 1))
    assert refused.value.code == "too_large"


def test_gps_exif_never_reaches_the_preview_or_thumbnail(small_page, no_ocr):
    extraction = extract(corpus.encode(small_page, "JPEG", exif=corpus.gps_exif()), "a.jpg", no_ocr)
    for encoded in (extraction.preview, extraction.thumbnail):
        assert b"Exif" not in encoded.data and b"PhoneMaker" not in encoded.data
        assert not Image.open(io.BytesIO(encoded.data)).getexif()


def test_a_jpeg_html_polyglot_is_served_only_as_a_re_encoded_picture(small_page, no_ocr):
    extraction = extract(corpus.jpeg_html_polyglot(small_page), "photo.jpg", no_ocr)
    assert extraction.values() == QR_FIELDS
    for encoded in (extraction.preview, extraction.thumbnail):
        assert b"<script" not in encoded.data and b"<html" not in encoded.data


def test_a_png_with_a_huge_text_chunk_loses_it(small_page, no_ocr):
    data = corpus.png_with_text_chunk(small_page, 8_000_000, compressed=False)
    extraction = extract(data, "scan.png", no_ocr)
    assert extraction.values() == QR_FIELDS
    assert len(extraction.preview.data) < 1_000_000


def test_a_name_with_dot_dot_and_unicode_is_only_shown_never_used(small_page, no_ocr):
    name = "../../../uploads/static/发票\u202e（2024年5月）.jpg"
    extraction = extract(corpus.encode(small_page, "JPEG"), name, no_ocr)
    assert extraction.display_name == "发票（2024年5月）.jpg"
    assert extraction.values() == QR_FIELDS


def mutations(data: bytes, rng: random.Random, count: int):
    for _ in range(count):
        mutated = bytearray(data)
        choice = rng.randrange(3)
        if choice == 0:
            mutated = mutated[: rng.randrange(16, len(mutated))]
        elif choice == 1:
            for _ in range(rng.randrange(1, 20)):
                mutated[rng.randrange(16, len(mutated))] = rng.randrange(256)
        else:
            start = rng.randrange(16, len(mutated))
            mutated[start:start] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        yield bytes(mutated)


@pytest.mark.parametrize("kind", ["jpg", "png", "pdf", "ofd", "xml"])
def test_damaged_files_never_raise_anything_but_a_refusal(small_page, no_ocr, kind):
    tiny = small_page.resize((350, 225))
    samples = {
        "jpg": corpus.encode(tiny, "JPEG"),
        "png": corpus.encode(tiny, "PNG"),
        "pdf": corpus.invoice_pdf(LEGACY),
        "ofd": corpus.invoice_ofd(corpus.BEIJING_DIGITAL),
        "xml": corpus.einvoice_xml(corpus.BEIJING_DIGITAL),
    }
    rng = random.Random(f"scan-{kind}")
    for data in mutations(samples[kind], rng, 25):
        try:
            extraction = extract(data, f"damaged.{kind}", no_ocr)
        except EvidenceRefused as refused:
            assert refused.message("en")
        else:
            json.dumps(extraction.to_json())
