"""OFD e-invoices (GB/T 33190): a zip of XML parts, read within bounds and never unpacked to disk.

An OFD keeps the invoice's fields in several places, read in the order they are trusted:

1. the invoice XML the issuing system attached (``Attachments`` → ``original_invoice.xml``,
   an ``eInvoice`` with ``InvoiceNo``, ``TaxInclusiveTotalAmount``, ``GraphCode`` ...; or a
   数电票 XML / XBRL part with the platform's tags): the exact source;
2. the key/value pairs under ``ofd:DocInfo/ofd:CustomDatas`` in ``OFD.xml`` (发票号码, 开票日期,
   合计金额 ...);
3. the first pages' text objects together with their template page's (the labels are often
   only on the template), by position (``portal.scans.layout``).

Each later source fills what the earlier ones lack; values that disagree are all kept as
candidates, so that ``extract`` flags them. The QR code is looked for among the package's images
(PNG, JPEG, BMP, and JBIG2 through Debian's ``jbig2dec``, run as a separate process with a time
and memory limit), else taken from the embedded XML's ``GraphCode``.

Public API:

- ``CUSTOM_DATA_FIELDS``: CustomData names -> field names; ``EINVOICE_TAGS``: the attached
  invoice XML's tags -> field names.
- ``read_ofd(data, limits) -> DocumentReading``: or raise ``EvidenceRefused``.
- ``decode_jbig2(content, max_pixels) -> PIL.Image | None``.
"""

from __future__ import annotations

import io
import logging
import posixpath
import re
import shutil
import subprocess
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from xml.etree.ElementTree import Element

from PIL import Image

from portal.scans.einvoice_xml import XML_TAGS
from portal.scans.errors import EvidenceRefused
from portal.scans.layout import Word, fields_from_words
from portal.scans.layout import text_lines as lines_of
from portal.scans.limits import ScanLimits
from portal.scans.qr import QrReading, find_invoice_qr, reading_from_text
from portal.scans.reading import Candidate, DocumentReading, candidates
from portal.scans.safexml import local_name, parse_xml
from portal.scans.textfields import TextField, canonical_value

log = logging.getLogger(__name__)

CUSTOM_DATA_FIELDS: Mapping[str, str] = {
    "发票代码": "code",
    "发票号码": "number",
    "开票日期": "issue_date",
    "校验码": "check_code",
    "合计金额": "amount",
    "合计税额": "tax",
    "价税合计": "total",
    "购买方纳税人识别号": "buyer_tax_id",
    "购买方名称": "buyer_name",
    "销售方纳税人识别号": "seller_tax_id",
    "销售方名称": "seller_name",
}
# The eInvoice schema (http://www.edrm.org.cn/schema/e-invoice/2019) of attached invoice XML.
EINVOICE_TAGS: Mapping[str, str] = {
    tag.lower(): field
    for tag, field in {
        "InvoiceCode": "code",
        "InvoiceNo": "number",
        "IssueDate": "issue_date",
        "InvoiceCheckCode": "check_code",
        "TaxExclusiveTotalAmount": "amount",
        "TaxTotalAmount": "tax",
        "TaxInclusiveTotalAmount": "total",
        "BuyerName": "buyer_name",
        "BuyerTaxID": "buyer_tax_id",
        "SellerName": "seller_name",
        "SellerTaxID": "seller_tax_id",
    }.items()
}
_QR_TEXT_TAGS = frozenset({"graphcode"})
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".jb2", ".jbig2", ".gbig2")
_JBIG2_MAGIC = b"\x97JB2\r\n\x1a\n"
_MAX_IMAGE_BYTES = 2 * 1024 * 1024
_MAX_QR_IMAGES = 8
_MAX_TEXT_PAGES = 2
_MAX_ATTACHMENTS = 4
_JBIG2_TIMEOUT_SECONDS = 5
_JBIG2_MEMORY_BYTES = 64 * 1024 * 1024
_DELTA = re.compile(r"g\s+(\d+)\s+(-?[\d.]+)|(-?[\d.]+)")


def read_ofd(data: bytes, limits: ScanLimits | None = None) -> DocumentReading:
    """Read an OFD invoice: attached invoice XML, CustomDatas, page and template text, and the
    QR code.

    Refuses with ``archive_too_large`` (too many parts, or more unpacked bytes than
    ``limits.max_zip_bytes``: a zip bomb), ``not_ofd`` (a zip without ``OFD.xml``, such as a
    Word file), ``xml_entities`` or ``corrupt``.
    """
    limits = limits or ScanLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
        raise EvidenceRefused("corrupt") from error
    with archive:
        members = {_normal(info.filename): info for info in archive.infolist()}
        if len(archive.infolist()) > limits.max_zip_members:
            raise EvidenceRefused("archive_too_large")
        if sum(info.file_size for info in members.values()) > limits.max_zip_bytes:
            raise EvidenceRefused("archive_too_large")
        package = _Package(archive, members, limits)
        manifest = package.xml("OFD.xml")
        if manifest is None:
            raise EvidenceRefused("not_ofd")
        document_path, document = _document(package, manifest)
        found: list[Candidate] = []
        attached, qr_text = _attached_invoice(package, document_path, document)
        found += candidates(attached, "xml", "ofd-attachment")
        found += candidates(_custom_data(manifest), "xml", "ofd-customdata")
        pages = _page_paths(document_path, document)
        words = [
            word
            for path in pages[:_MAX_TEXT_PAGES]
            for word in _page_words(package, document_path, document, path)
        ]
        found += candidates(fields_from_words(words), "text", "ofd-page")
        qr = _qr_from_images(package)
        if (qr is None or not qr.ok) and qr_text:
            from_xml = reading_from_text(qr_text, "ofd-xml")
            if qr is None or from_xml.ok:
                qr = from_xml
    text_lines = tuple(lines_of(words))
    return DocumentReading(
        source="ofd",
        candidates=tuple(found),
        qr=qr,
        pages=max(1, len(pages)),
        text_lines=text_lines,
    )


class _Package:
    """Bounded access to the parts of the zip (by normalised name, never via the file system)."""

    def __init__(
        self, archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], limits: ScanLimits
    ) -> None:
        self.archive = archive
        self.members = members
        self.limits = limits

    def read(self, name: str, limit: int) -> bytes | None:
        info = self.members.get(_normal(name))
        if info is None:
            return None
        if info.file_size > limit:
            raise EvidenceRefused("archive_too_large")
        try:
            with self.archive.open(info) as member:
                # Never trust the declared size: read at most one byte past the limit.
                content = member.read(limit + 1)
        except (
            zipfile.BadZipFile,
            zlib.error,
            NotImplementedError,
            RuntimeError,
            OSError,
            EOFError,
        ) as error:
            # Broken data or CRC, unknown compression, an encrypted part.
            raise EvidenceRefused("corrupt") from error
        if len(content) > limit:
            raise EvidenceRefused("archive_too_large")
        return content

    def xml(self, name: str) -> Element | None:
        content = self.read(name, self.limits.max_xml_bytes)
        return parse_xml(content) if content is not None else None

    def names(self) -> list[str]:
        return list(self.members)


def _normal(name: str) -> str:
    # Part names are compared, never used as paths; "/Doc_0//x" and "Doc_0/x" are the same part.
    return posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/").lower()


def _resolve(folder: str, location: str) -> str:
    """A part reference: absolute from the package root ("/Doc_0/x") or relative to ``folder``."""
    location = location.strip()
    return location if location.startswith("/") else posixpath.join(folder, location)


def _children(element: Element | None, name: str) -> list[Element]:
    if element is None:
        return []
    return [child for child in element.iter() if local_name(child.tag) == name]


def _document(package: _Package, manifest: Element) -> tuple[str, Element | None]:
    root = next((el.text.strip() for el in _children(manifest, "DocRoot") if el.text), None)
    if root is None:
        return "", None
    return _normal(root), package.xml(root)


def _custom_data(manifest: Element) -> dict[str, TextField]:
    fields: dict[str, TextField] = {}
    for element in _children(manifest, "CustomData"):
        field = CUSTOM_DATA_FIELDS.get((element.get("Name") or "").strip())
        value = canonical_value(field, element.text) if field else None
        if field and value is not None and field not in fields:
            fields[field] = TextField(value, 1.0)
    return fields


def _attached_invoice(
    package: _Package, document_path: str, document: Element | None
) -> tuple[dict[str, TextField], str | None]:
    """The fields and QR text of the invoice XML attached to the document, if any."""
    folder = posixpath.dirname(document_path)
    fields: dict[str, TextField] = {}
    qr_text = None
    for listing in _children(document, "Attachments")[:1]:
        if not listing.text:
            continue
        listing_path = _resolve(folder, listing.text)
        attachments = package.xml(listing_path)
        for attachment in _children(attachments, "Attachment")[:_MAX_ATTACHMENTS]:
            location = next((el.text for el in _children(attachment, "FileLoc") if el.text), "")
            is_xml = (attachment.get("Format") or "").lower() in ("xml", "xbrl")
            if not location or not (is_xml or location.lower().endswith((".xml", ".xbrl"))):
                continue
            root = package.xml(_resolve(posixpath.dirname(listing_path), location))
            for element in root.iter() if root is not None else ():
                tag = local_name(element.tag).lower()
                if tag in _QR_TEXT_TAGS and element.text and qr_text is None:
                    qr_text = element.text.strip()
                field = EINVOICE_TAGS.get(tag) or XML_TAGS.get(tag)
                value = canonical_value(field, element.text) if field else None
                if field and value is not None and field not in fields:
                    fields[field] = TextField(value, 1.0)
    return fields, qr_text


def _page_paths(document_path: str, document: Element | None) -> list[str]:
    folder = posixpath.dirname(document_path)
    return [
        _resolve(folder, page.get("BaseLoc", ""))
        for page in _children(document, "Page")
        if page.get("BaseLoc")
    ]


def _page_words(
    package: _Package, document_path: str, document: Element | None, path: str
) -> list[Word]:
    """The page's text objects and those of the template pages it uses, with their boxes."""
    content = package.xml(path)
    if content is None:
        return []
    folder = posixpath.dirname(document_path)
    templates = {
        template.get("ID"): _resolve(folder, template.get("BaseLoc", ""))
        for template in _children(document, "TemplatePage")
        if template.get("BaseLoc")
    }
    words = _text_objects(content)
    for used in _children(content, "Template")[:4]:
        template_path = templates.get(used.get("TemplateID"))
        template = package.xml(template_path) if template_path else None
        if template is not None:
            words += _text_objects(template)
    return words


def _text_objects(content: Element) -> list[Word]:
    words = []
    for text_object in _children(content, "TextObject"):
        left, top, _width, height = _boundary(text_object.get("Boundary", ""))
        size = _number(text_object.get("Size")) or height or 1.0
        for code in _children(text_object, "TextCode"):
            text = (code.text or "").strip()
            if not text:
                continue
            x = left + (_number(code.get("X")) or 0.0)
            baseline = top + (_number(code.get("Y")) or size)
            advance = _advance(code.get("DeltaX"), len(text), size)
            words.append(Word(text, x, baseline - size, x + advance, baseline + 0.2 * size))
    return words


def _advance(delta_x: str | None, length: int, size: float) -> float:
    """The text's width: its glyph offsets (``DeltaX``, with ``g n d`` repeats) plus one glyph."""
    offsets: list[float] = []
    for repeat, step, single in _DELTA.findall(delta_x or ""):
        if repeat:
            offsets += [float(step)] * min(int(repeat), 10_000)
        elif single:
            offsets.append(float(single))
    if not offsets:
        return size * length
    return sum(offsets[: max(0, length - 1)]) + size


def _boundary(text: str) -> tuple[float, float, float, float]:
    values = [_number(part) for part in text.split()]
    if len(values) != 4 or any(value is None for value in values):
        return 0.0, 0.0, 0.0, 0.0
    return tuple(values)  # type: ignore[return-value]


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _qr_from_images(package: _Package) -> QrReading | None:
    candidate = None
    images = [name for name in package.names() if name.endswith(_IMAGE_SUFFIXES)]
    for name in images[:_MAX_QR_IMAGES]:
        content = package.read(name, _MAX_IMAGE_BYTES)
        image = _decode_small_image(content or b"", package.limits)
        if image is None:
            continue
        reading = find_invoice_qr(_with_quiet_zone(image), where="ofd-image")
        if reading is not None and reading.ok:
            return reading
        candidate = candidate or reading
    return candidate


def _with_quiet_zone(image: Image.Image) -> Image.Image:
    """A QR image stored edge to edge (as OFDs do) with a white border and enough pixels a
    module for the reader."""
    gray = image.convert("L")
    scale = max(1, 400 // max(gray.size))
    if scale > 1:
        gray = gray.resize((gray.width * scale, gray.height * scale), Image.Resampling.NEAREST)
    framed = Image.new("L", (gray.width + 40, gray.height + 40), 255)
    framed.paste(gray, (20, 20))
    return framed


def _decode_small_image(content: bytes, limits: ScanLimits) -> Image.Image | None:
    if content.startswith(_JBIG2_MAGIC):
        return decode_jbig2(content, limits.max_render_pixels)
    try:
        image = Image.open(io.BytesIO(content), formats=["PNG", "JPEG", "BMP"])
        if image.width * image.height > limits.max_render_pixels:
            return None
        image.load()
    except Exception as error:  # an undecodable picture is just not the QR code
        log.info("skipped an OFD image that does not decode: %r", error)
        return None
    return image


def decode_jbig2(content: bytes, max_pixels: int) -> Image.Image | None:
    """Decode a JBIG2 file (the QR code of many OFD invoices) with ``jbig2dec``, in its own
    process under a time and memory limit; None when it is missing, fails or is too large."""
    program = shutil.which("jbig2dec")
    if program is None:
        log.warning("jbig2dec is not installed: a JBIG2 QR code in an OFD cannot be read")
        return None
    with tempfile.TemporaryDirectory(prefix="portal-jbig2-") as folder:
        source = Path(folder) / "image.jb2"
        source.write_bytes(content)
        try:
            # The program is found on PATH by name; the only argument from the upload is the
            # path of our own temporary file.
            done = subprocess.run(  # noqa: S603
                [
                    program,
                    "-q",
                    "-M",
                    str(_JBIG2_MEMORY_BYTES),
                    "-t",
                    "png",
                    "-o",
                    "-",
                    str(source),
                ],
                capture_output=True,
                timeout=_JBIG2_TIMEOUT_SECONDS,
                check=False,
            )
        except (subprocess.TimeoutExpired, OSError) as error:
            log.info("jbig2dec did not decode an OFD image: %r", error)
            return None
    if done.returncode != 0 or not done.stdout:
        log.info("jbig2dec refused an OFD image (exit %s)", done.returncode)
        return None
    try:
        image = Image.open(io.BytesIO(done.stdout), formats=["PNG"])
        if image.width * image.height > max_pixels:
            return None
        image.load()
    except Exception as error:
        log.info("jbig2dec wrote an image that does not decode: %r", error)
        return None
    return image
