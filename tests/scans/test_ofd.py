import io
import zipfile

import pytest

from portal.scans.errors import EvidenceRefused
from portal.scans.limits import ScanLimits
from portal.scans.ofd import read_ofd
from tests.scans import corpus

SAMPLE = corpus.BEIJING_DIGITAL


def values(reading) -> dict[str, str]:
    return {name: field.value for name, field in reading.fields.items()}


def test_custom_datas_are_read_exactly():
    reading = read_ofd(corpus.invoice_ofd(SAMPLE))
    assert reading.source == "ofd"
    custom = {c.name: c.field.value for c in reading.candidates if c.where == "ofd-customdata"}
    assert custom == {
        "number": SAMPLE.number,
        "issue_date": "2024-05-14",
        "amount": "47.17",
        "tax": "2.83",
        "total": "50.00",
        "buyer_tax_id": SAMPLE.buyer_tax_id,
        "seller_tax_id": SAMPLE.seller_tax_id,
    }
    # The page text fills what the CustomDatas lack (the names) and agrees with the rest.
    assert values(reading) == custom | {
        "buyer_name": SAMPLE.buyer_name,
        "seller_name": SAMPLE.seller_name,
    }
    assert reading.qr.ok and reading.qr.where == "ofd-image"
    assert reading.pages == 1


def test_legacy_invoice_custom_datas_include_code_and_check_code():
    reading = read_ofd(corpus.invoice_ofd(corpus.BEIJING_E_ORDINARY, qr=False))
    assert values(reading)["code"] == corpus.BEIJING_E_ORDINARY.code
    assert values(reading)["check_code"] == corpus.BEIJING_E_ORDINARY.check_code
    assert reading.qr is None


def test_without_custom_datas_the_page_text_is_read():
    reading = read_ofd(corpus.invoice_ofd(SAMPLE, custom_data=False, qr=False))
    assert values(reading)["number"] == SAMPLE.number
    assert values(reading)["buyer_name"] == SAMPLE.buyer_name
    assert "发票号码:" + SAMPLE.number in reading.text_lines


def test_a_zip_that_is_not_an_ofd_is_refused():
    docx_like = corpus.zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"})
    with pytest.raises(EvidenceRefused) as refused:
        read_ofd(docx_like)
    assert refused.value.code == "not_ofd"


def test_a_zip_bomb_is_refused_from_the_declared_sizes():
    bomb = corpus.zip_bytes({"OFD.xml": b"<OFD/>", "Doc_0/huge.bin": bytes(80 * 1024 * 1024)})
    assert len(bomb) < 200_000
    with pytest.raises(EvidenceRefused) as refused:
        read_ofd(bomb)
    assert refused.value.code == "archive_too_large"


def test_a_member_that_inflates_past_its_declared_size_is_not_read_past_the_limit():
    manifest = b"<OFD>" + b" " * 5_000_000 + b"</OFD>"
    limits = ScanLimits(max_xml_bytes=1_000_000)
    with pytest.raises(EvidenceRefused) as refused:
        read_ofd(corpus.zip_bytes({"OFD.xml": manifest}), limits)
    assert refused.value.code == "archive_too_large"


def test_too_many_members_are_refused():
    many = corpus.zip_bytes({f"Doc_0/Res/{index}.xml": b"" for index in range(30)})
    with pytest.raises(EvidenceRefused) as refused:
        read_ofd(many, ScanLimits(max_zip_members=20))
    assert refused.value.code == "archive_too_large"


def test_entities_inside_the_package_are_refused():
    with pytest.raises(EvidenceRefused) as refused:
        read_ofd(corpus.zip_bytes({"OFD.xml": corpus.EXTERNAL_ENTITY}))
    assert refused.value.code == "xml_entities"


def test_parts_named_with_dot_dot_are_only_names():
    members = {"../../OFD.xml": b"<ofd:OFD xmlns:ofd='x'/>", "/etc/passwd": b"x"}
    reading = read_ofd(corpus.zip_bytes(members))
    assert reading.fields == {}


def test_broken_archives_are_corrupt():
    data = bytearray(corpus.invoice_ofd(SAMPLE))
    with pytest.raises(EvidenceRefused) as refused:
        read_ofd(bytes(data[:200]))
    assert refused.value.code == "corrupt"
    # A flipped byte inside OFD.xml's compressed data fails its CRC.
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("OFD.xml")
    data[info.header_offset + 30 + len("OFD.xml") + 10] ^= 0xFF
    with pytest.raises(EvidenceRefused) as refused:
        read_ofd(bytes(data))
    assert refused.value.code == "corrupt"
