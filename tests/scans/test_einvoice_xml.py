import pytest

from portal.scans.einvoice_xml import read_invoice_xml
from portal.scans.errors import EvidenceRefused
from portal.scans.limits import ScanLimits
from tests.scans import corpus

SAMPLE = corpus.BEIJING_DIGITAL
EXPECTED = {
    "number": SAMPLE.number,
    "issue_date": "2024-05-14",
    "amount": "47.17",
    "tax": "2.83",
    "total": "50.00",
    "buyer_tax_id": SAMPLE.buyer_tax_id,
    "buyer_name": SAMPLE.buyer_name,
    "seller_tax_id": SAMPLE.seller_tax_id,
    "seller_name": SAMPLE.seller_name,
}


@pytest.mark.parametrize("namespace", [None, "http://www.chinatax.gov.cn/einvoice"])
def test_the_platform_tags_are_read_exactly(namespace):
    reading = read_invoice_xml(corpus.einvoice_xml(SAMPLE, namespace=namespace))
    assert reading.source == "xml"
    assert {name: field.value for name, field in reading.fields.items()} == EXPECTED
    assert all(field.confidence == 1.0 for field in reading.fields.values())


def test_pinyin_tags_of_older_exports_are_read():
    xml = (
        b"<FPXX><FPDM>011002400111</FPDM><FPHM>12345678</FPHM><KPRQ>20240514</KPRQ>"
        b"<JYM>65431824771847114698</JYM><HJJE>100.00</HJJE><HJSE>13.00</HJSE>"
        b"<JSHJ>113.00</JSHJ></FPXX>"
    )
    fields = {name: field.value for name, field in read_invoice_xml(xml).fields.items()}
    assert fields == {
        "code": "011002400111",
        "number": "12345678",
        "issue_date": "2024-05-14",
        "check_code": "65431824771847114698",
        "amount": "100.00",
        "tax": "13.00",
        "total": "113.00",
    }


@pytest.mark.parametrize(
    "content",
    [
        corpus.BILLION_LAUGHS,
        corpus.EXTERNAL_ENTITY,
        b'<!DOCTYPE EInvoice SYSTEM "http://evil.example/x.dtd"><EInvoice/>',
    ],
)
def test_dtds_entities_and_external_references_are_refused(content):
    with pytest.raises(EvidenceRefused) as refused:
        read_invoice_xml(content)
    assert refused.value.code == "xml_entities"


@pytest.mark.parametrize("content", [b"<EInvoice><unclosed></EInvoice>", b"<", b"\xff\xfe<a"])
def test_malformed_xml_is_corrupt(content):
    with pytest.raises(EvidenceRefused) as refused:
        read_invoice_xml(content)
    assert refused.value.code == "corrupt"


def test_xml_above_its_own_size_limit_is_refused():
    with pytest.raises(EvidenceRefused) as refused:
        read_invoice_xml(b"<a>" + b" " * 2000 + b"</a>", ScanLimits(max_xml_bytes=1000))
    assert refused.value.code == "too_large"


def test_values_of_the_wrong_shape_are_left_out():
    xml = b"<EInvoice><InvoiceNumber>N/A</InvoiceNumber><TotalTaxAm>lots</TotalTaxAm></EInvoice>"
    assert read_invoice_xml(xml).fields == {}
