"""Each cause of issue 18, reproduced in a generated file laid out like real ones
(tests/scans/layouts.py), read through ``extract`` or the layout reader."""

from __future__ import annotations

from dataclasses import replace

import pypdfium2
import pytest

from portal.scans import OcrPolicy, ScanLimits, extract
from portal.scans.layout import fields_from_words, text_lines
from portal.scans.ocr import read_invoice_words
from portal.scans.pdf import page_words
from tests.scans import corpus, layouts

NO_OCR = ScanLimits(ocr=OcrPolicy.NEVER)
LEGACY = corpus.BEIJING_E_ORDINARY
DIGITAL = corpus.BEIJING_DIGITAL


def printed(sample: corpus.InvoiceSample) -> dict[str, str]:
    fields = {
        "number": sample.number,
        "issue_date": sample.issue_date.isoformat(),
        "amount": str(sample.amount),
        "tax": str(sample.tax),
        "total": str(sample.total),
        "buyer_tax_id": sample.buyer_tax_id,
        "buyer_name": sample.buyer_name,
        "seller_tax_id": sample.seller_tax_id,
        "seller_name": sample.seller_name,
    }
    if sample.code:
        fields["code"] = sample.code
    if sample.check_code:
        fields["check_code"] = sample.check_code
    return fields


def read(data: bytes, name: str, limits: ScanLimits = NO_OCR) -> dict[str, str]:
    values = extract(data, name, limits).values()
    values.pop("kind", None)
    return values


def checks(extraction) -> dict[str, bool]:
    return {check.code: check.ok for check in extraction.checks}


# ---- 1. PDF text in content-stream order, spaced labels, vertical block labels --------------


def test_a_pdf_whose_labels_come_before_their_values_is_read_by_position():
    assert read(layouts.pdf(layouts.legacy_pieces(LEGACY)), "a.pdf") == printed(LEGACY)


def test_with_a_qr_code_the_qr_wins_and_the_text_fills_the_rest():
    data = layouts.pdf(layouts.legacy_pieces(LEGACY), qr_text=LEGACY.qr_text)
    extraction = extract(data, "a.pdf", NO_OCR)
    assert extraction.field("amount").source == "qr"
    assert extraction.field("total").source == "text"
    assert extraction.field("buyer_tax_id").where == "pdf-text"
    assert extraction.conflicts == ()
    assert checks(extraction)["totals"]


def test_a_text_that_disagrees_with_the_qr_is_flagged_not_chosen():
    other = replace(LEGACY, amount=LEGACY.amount + 1)  # the QR claims another amount
    data = layouts.pdf(layouts.legacy_pieces(LEGACY), qr_text=other.qr_text)
    extraction = extract(data, "a.pdf", NO_OCR)
    assert extraction.value("amount") == str(other.amount)  # the QR's, flagged
    (conflict,) = extraction.conflicts
    assert conflict.name == "amount"
    assert {f.value: f.source for f in conflict.fields} == {
        str(other.amount): "qr",
        str(LEGACY.amount): "text",
    }
    found = checks(extraction)
    assert found["sources_agree"] is False
    assert found["totals"] is False  # the QR's amount + the printed tax is not the total
    assert extraction.to_json()["conflicts"][0]["name"] == "amount"


def test_a_total_that_is_not_amount_plus_tax_is_flagged():
    wrong = replace(LEGACY, total=LEGACY.total + 1)
    extraction = extract(layouts.pdf(layouts.legacy_pieces(wrong)), "a.pdf", NO_OCR)
    assert checks(extraction)["totals"] is False


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_a_page_shown_rotated_is_read_the_way_its_text_runs(rotate):
    data = layouts.pdf(layouts.legacy_pieces(LEGACY), rotate=rotate)
    assert read(data, "a.pdf") == printed(LEGACY)


@pytest.mark.parametrize("rotate", [90, 0])
def test_text_drawn_turned_is_turned_back(rotate):
    # A scanner's PDF draws the page turned and sets /Rotate to show it upright (or not).
    # (PDFium gives no boxes to turned glyphs of a font without outlines, so the words here
    # are Latin; real invoice PDFs embed their fonts.)
    pieces = [layouts.Piece(100, 100, "AB 12"), layouts.Piece(100, 130, "CD")]
    document = pypdfium2.PdfDocument(layouts.pdf(pieces, rotate=rotate, turned=True))
    words = page_words(document[0])
    assert text_lines(words) == ["AB 12", "CD"]
    assert [w.text for w in sorted(words, key=lambda w: (w.top, w.left))][:2] == ["A", "B"]


# ---- 数电票: buyer left, seller right; an individual buyer without a taxpayer ID -----------------


def test_a_digital_invoice_reads_both_blocks_side_by_side():
    assert read(layouts.pdf(layouts.digital_pieces(DIGITAL)), "a.pdf") == printed(DIGITAL)


def test_an_individual_buyer_never_gets_the_sellers_taxpayer_id():
    values = read(layouts.pdf(layouts.digital_pieces(DIGITAL, individual=True)), "a.pdf")
    assert "buyer_tax_id" not in values
    assert values["seller_tax_id"] == DIGITAL.seller_tax_id
    assert values["buyer_name"] == "张三"


def test_an_individual_buyer_read_by_layout_alone():
    words = layouts.words(layouts.digital_pieces(DIGITAL, individual=True))
    fields = fields_from_words(words)
    assert "buyer_tax_id" not in fields
    assert fields["seller_tax_id"].value == DIGITAL.seller_tax_id


# ---- 2. 数电票 region digits: planned cities and unknown codes -------------------------------


def qr_photo(text: str) -> bytes:
    page = corpus.invoice_page(replace(DIGITAL), width=900)
    page.paste(corpus.qr_image(text, module_px=5), (20, 20))
    return corpus.encode(page, "PNG")


def test_a_qingdao_digital_qr_is_read_and_named():
    extraction = extract(
        qr_photo("01,32,,24922000000078112547,214.00,20241228,,A176"), "q.png", NO_OCR
    )
    assert extraction.qr.ok and extraction.readable
    beijing = next(c for c in extraction.checks if c.code == "beijing")
    assert "青岛" in beijing.message("zh_CN") and "Qingdao" in beijing.message("en")


def test_an_unknown_bureau_code_is_a_readable_invoice_of_an_unknown_region():
    extraction = extract(
        qr_photo("01,32,,24962000000078112547,214.00,20241228,,A176"), "q.png", NO_OCR
    )
    assert extraction.qr.ok
    assert extraction.value("number") == "24962000000078112547"
    beijing = next(c for c in extraction.checks if c.code == "beijing")
    assert not beijing.ok and "96" in beijing.message("zh_CN")
    assert "qr" not in checks(extraction)


# ---- 3. QR payloads as real ones are ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "01,32,,25312000000123456789,31.50,2025-03-25,A1B2",  # ride-hailing: seven fields
        "01,32,,25312000000123456789,31.50,2025-03-25,,C16,",
        "01,32,,25312000000123456789,31.50,20250325,,41758",
        "01,32,,25312000000123456789,31.50,20250325,,758",
    ],
)
def test_real_qr_variants_are_read(text):
    extraction = extract(qr_photo(text), "q.png", NO_OCR)
    assert extraction.qr.ok
    assert (extraction.value("issue_date"), extraction.value("total")) == ("2025-03-25", "31.50")


def test_what_cannot_be_an_invoice_qr_is_still_refused():
    extraction = extract(
        qr_photo("01,32,,25312000000123456789,31.50,2025/03/25,,A1B2"), "q.png", NO_OCR
    )
    assert extraction.qr is not None and not extraction.qr.ok
    assert checks(extraction)["qr"] is False


# ---- 4. OFD: attached invoice XML, CustomDatas, template text, JBIG2 QR ---------------------


def test_an_ofd_whose_labels_are_on_its_template_page_is_read_by_position():
    data = layouts.ofd(layouts.legacy_pieces(LEGACY), template=True)
    extraction = extract(data, "a.ofd", NO_OCR)
    values = extraction.values()
    values.pop("kind")
    assert values == printed(LEGACY)
    assert {f.where for f in extraction.fields} == {"ofd-page"}


def test_without_the_template_the_page_alone_has_no_labels():
    # The values of a page without its labels are not guessed at.
    data = layouts.ofd([p for p in layouts.legacy_pieces(LEGACY) if not p.label], template=False)
    assert extract(data, "a.ofd", NO_OCR).value("buyer_tax_id") is None


def test_the_attached_invoice_xml_comes_first_and_a_disagreeing_custom_data_is_flagged():
    data = layouts.ofd(
        layouts.legacy_pieces(LEGACY),
        attachment=layouts.original_invoice_xml(LEGACY),
        custom_datas={"发票号码": LEGACY.number, "合计税额": "99.00"},
    )
    extraction = extract(data, "a.ofd", NO_OCR)
    assert extraction.field("total").where == "ofd-attachment"
    assert extraction.value("tax") == str(LEGACY.tax)
    assert [c.name for c in extraction.conflicts] == ["tax"]
    assert checks(extraction)["sources_agree"] is False
    # The attached XML's GraphCode is the QR code when no QR image is in the package.
    assert extraction.qr.ok and extraction.qr.where == "ofd-xml"


def test_a_jbig2_qr_image_is_decoded(jbig2dec):
    data = layouts.ofd(layouts.legacy_pieces(LEGACY), jbig2_qr=True)
    extraction = extract(data, "a.ofd", NO_OCR)
    assert extraction.qr.ok and extraction.qr.where == "ofd-image"
    assert extraction.qr.payload.identity.number == "83089647"  # the real sample's QR
    # It disagrees with this page's fields, and that is flagged rather than hidden.
    assert checks(extraction)["sources_agree"] is False


# ---- 5/6. Paper invoices: unlabelled code, № number; OCR by layout -------------------------


def test_a_paper_invoice_gives_its_unlabelled_code_and_its_number_after_no():
    fields = fields_from_words(layouts.words(layouts.paper_pieces()))
    assert fields["code"].value == layouts.PAPER_SPECIAL.code
    assert fields["number"].value == layouts.PAPER_SPECIAL.number
    assert fields["buyer_tax_id"].value == layouts.PAPER_SPECIAL.buyer_tax_id


def test_the_machine_number_is_not_taken_for_an_unlabelled_code():
    pieces = [
        p for p in layouts.legacy_pieces(LEGACY) if not p.text.startswith(("发票代码", LEGACY.code))
    ]
    assert "code" not in fields_from_words(layouts.words(pieces))


def test_ocr_reads_a_scanned_paper_invoice():
    page = layouts.image(layouts.paper_pieces())
    fields = {k: v.value for k, v in fields_from_words(read_invoice_words(page)).items()}
    sample = layouts.PAPER_SPECIAL
    assert (fields["code"], fields["number"]) == (sample.code, sample.number)
    assert (fields["amount"], fields["tax"], fields["total"]) == (
        str(sample.amount),
        str(sample.tax),
        str(sample.total),
    )
    assert fields["buyer_tax_id"] == sample.buyer_tax_id
    assert fields["seller_tax_id"] == sample.seller_tax_id


# ---- a real file the reader cannot read ------------------------------------------------------


def test_a_file_with_nothing_readable_asks_for_the_fields_and_guesses_nothing():
    blank = layouts.pdf([layouts.Piece(40, 40, "收据")])
    extraction = extract(blank, "receipt.pdf", NO_OCR)
    assert not extraction.readable
    assert extraction.to_json()["readable"] is False
    found = next(c for c in extraction.checks if c.code == "found")
    assert "请手动填写" in found.message("zh_CN")
    assert "please type the fields" in found.message("en")
