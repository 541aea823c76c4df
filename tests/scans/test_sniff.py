import pytest

from portal.scans.errors import EvidenceRefused
from portal.scans.sniff import MAX_FILENAME_LENGTH, FileKind, detect_kind, safe_filename, sniff
from tests.scans import corpus


@pytest.fixture(scope="module")
def samples(legacy_page):
    small = legacy_page.resize((140, 90))
    return {
        FileKind.JPEG: corpus.encode(small, "JPEG"),
        FileKind.PNG: corpus.encode(small, "PNG"),
        FileKind.WEBP: corpus.encode(small, "WEBP"),
        FileKind.HEIC: corpus.encode(small, "HEIF"),
        FileKind.PDF: corpus.invoice_pdf(corpus.BEIJING_E_ORDINARY),
        FileKind.OFD: corpus.invoice_ofd(corpus.BEIJING_DIGITAL),
        FileKind.XML: corpus.einvoice_xml(corpus.BEIJING_DIGITAL),
    }


@pytest.mark.parametrize("kind", list(FileKind))
def test_type_comes_from_the_content(samples, kind):
    assert detect_kind(samples[kind][:4096]) is kind
    assert sniff(samples[kind][:4096], f"发票{kind.extensions[0].upper()}") is kind


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (FileKind.PNG, "scan.jpg"),
        (FileKind.JPEG, "photo.pdf"),
        (FileKind.PDF, "invoice"),
        (FileKind.JPEG, "photo.jpg.exe"),
    ],
)
def test_a_name_that_does_not_match_the_content_is_refused(samples, kind, name):
    with pytest.raises(EvidenceRefused) as refused:
        sniff(samples[kind][:4096], name)
    assert refused.value.code == "extension_mismatch"
    assert kind.label in refused.value.message("en")


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (corpus.SVG, "drawing.svg"),
        (corpus.SVG, "invoice.xml"),
        (corpus.HTML_PAGE, "photo.jpg"),
        (b"<script>alert(1)</script>", "x.xml"),
        (b"  <HTML><body>hi", "x.png"),
    ],
)
def test_markup_a_browser_would_run_is_refused_as_active_content(content, name):
    with pytest.raises(EvidenceRefused) as refused:
        sniff(content, name)
    assert refused.value.code == "active_content"


@pytest.mark.parametrize(
    "content",
    [
        b"GIF89a\x01\x00\x01\x00",
        b"BM\x00\x00",
        b"II*\x00",
        b"\x00\x00\x00\x18ftypavif\x00\x00",
        b"just some text",
        b"\x00" * 64,
        b"MZ\x90\x00",
    ],
)
def test_other_types_are_unsupported(content):
    with pytest.raises(EvidenceRefused) as refused:
        sniff(content, "file.jpg")
    assert refused.value.code == "unsupported_type"


@pytest.mark.parametrize("name", ["report.docx", "invoices.zip", "invoice"])
def test_a_zip_not_named_ofd_is_unsupported(samples, name):
    with pytest.raises(EvidenceRefused) as refused:
        sniff(samples[FileKind.OFD][:4096], name)
    assert refused.value.code == "unsupported_type"


def test_no_bytes_is_empty():
    with pytest.raises(EvidenceRefused) as refused:
        sniff(b"", "a.jpg")
    assert refused.value.code == "empty"


def test_heif_with_heic_among_compatible_brands_is_heic():
    head = b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1heicmiaf"
    assert detect_kind(head) is FileKind.HEIC


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\发票 2024年5月.JPG", "发票 2024年5月.JPG"),
        ("C:/Users/张三/Desktop/发票.pdf", "发票.pdf"),
        ("..", "upload"),
        ("", "upload"),
        (None, "upload"),
        (".htaccess", "htaccess"),
        ("inv\x00oice\r\n.jpg", "invoice .jpg"),
        ("photo\u202egpj.exe", "photogpj.exe"),
        ("  spaced   out .png ", "spaced out .png"),
    ],
)
def test_safe_filename_keeps_the_last_part_and_unicode_but_nothing_dangerous(name, shown):
    assert safe_filename(name) == shown


def test_safe_filename_shortens_long_names_but_keeps_the_extension():
    shown = safe_filename("发" * 500 + ".jpeg")
    assert len(shown) == MAX_FILENAME_LENGTH
    assert shown.endswith(".jpeg")
