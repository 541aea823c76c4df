"""OCR is slow (~1 s a page on two cores): one small page here, one in test_extract."""

from portal.scans.layout import fields_from_text
from portal.scans.ocr import ocr_engine, read_text
from tests.scans import corpus


def test_printed_chinese_invoice_text_is_read():
    sample = corpus.BEIJING_DIGITAL
    page = corpus.invoice_page(sample, qr=False, width=1000)
    lines = read_text(page)
    assert lines
    assert all(0.0 <= line.confidence <= 1.0 and len(line.box) == 4 for line in lines)
    text = "\n".join(line.text for line in lines)
    assert "发票号码" in text
    fields = {
        name: field.value
        for name, field in fields_from_text(
            [(line.text, line.confidence) for line in lines]
        ).items()
    }
    assert fields["number"] == sample.number
    assert fields["total"] == str(sample.total)
    assert fields["buyer_tax_id"] == sample.buyer_tax_id


def test_the_engine_is_loaded_once_per_process():
    assert ocr_engine() is ocr_engine()
