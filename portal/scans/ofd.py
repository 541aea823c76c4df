"""OFD e-invoices (GB/T 33190): a zip of XML parts, read within bounds and never unpacked to disk.

The invoice's fields are key/value pairs under ``ofd:DocInfo/ofd:CustomDatas`` in ``OFD.xml``
(发票号码, 开票日期, 合计金额 ...). When a file lacks them, the first page's text objects are read
instead. The QR code is looked for among the package's images.

Public API:

- ``CUSTOM_DATA_FIELDS``: CustomData names -> field names.
- ``read_ofd(data, limits) -> DocumentReading``: or raise ``EvidenceRefused``.
"""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile
import zlib
from collections.abc import Mapping
from xml.etree.ElementTree import Element

from PIL import Image

from portal.scans.errors import EvidenceRefused
from portal.scans.limits import ScanLimits
from portal.scans.qr import QrReading, find_invoice_qr
from portal.scans.reading import DocumentReading
from portal.scans.safexml import local_name, parse_xml
from portal.scans.textfields import TextField, canonical_value, fields_from_text

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
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_MAX_IMAGE_BYTES = 2 * 1024 * 1024
_MAX_QR_IMAGES = 8
_MAX_TEXT_PAGES = 2


def read_ofd(data: bytes, limits: ScanLimits | None = None) -> DocumentReading:
    """Read an OFD invoice: CustomDatas (or the first page's text) and the QR code image.

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
        fields = _custom_data(manifest)
        pages = _page_paths(package, manifest)
        text_lines: tuple[str, ...] = ()
        if not fields.keys() & {"number", "code"}:
            text_lines = tuple(
                line for path in pages[:_MAX_TEXT_PAGES] for line in _page_text(package, path)
            )
            fields = {**fields_from_text(text_lines), **fields}
        qr = _qr_from_images(package)
    return DocumentReading(
        source="ofd", fields=fields, qr=qr, pages=max(1, len(pages)), text_lines=text_lines
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


def _custom_data(manifest: Element) -> dict[str, TextField]:
    fields: dict[str, TextField] = {}
    for element in manifest.iter():
        if local_name(element.tag) != "CustomData":
            continue
        field = CUSTOM_DATA_FIELDS.get((element.get("Name") or "").strip())
        value = canonical_value(field, element.text) if field else None
        if field and value is not None and field not in fields:
            fields[field] = TextField(value, 1.0)
    return fields


def _page_paths(package: _Package, manifest: Element) -> list[str]:
    root = next(
        (el.text.strip() for el in manifest.iter() if local_name(el.tag) == "DocRoot" and el.text),
        None,
    )
    if root is None:
        return []
    document = package.xml(root)
    if document is None:
        return []
    folder = posixpath.dirname(_normal(root))
    return [
        posixpath.join(folder, page.get("BaseLoc", ""))
        for page in document.iter()
        if local_name(page.tag) == "Page" and page.get("BaseLoc")
    ]


def _page_text(package: _Package, path: str) -> list[str]:
    """The page's text objects as lines: sorted by position, those on one baseline joined."""
    content = package.xml(path)
    if content is None:
        return []
    pieces: list[tuple[float, float, str]] = []
    for text_object in content.iter():
        if local_name(text_object.tag) != "TextObject":
            continue
        x, y = _origin(text_object.get("Boundary", ""))
        text = "".join(
            code.text or "" for code in text_object.iter() if local_name(code.tag) == "TextCode"
        )
        if text.strip():
            pieces.append((y, x, text.strip()))
    lines: list[list[tuple[float, float, str]]] = []
    for piece in sorted(pieces):
        if lines and abs(lines[-1][0][0] - piece[0]) < 1.5:
            lines[-1].append(piece)
        else:
            lines.append([piece])
    return [" ".join(text for _, _, text in sorted(line, key=lambda p: p[1])) for line in lines]


def _origin(boundary: str) -> tuple[float, float]:
    try:
        x, y, *_ = (float(value) for value in boundary.split())
    except ValueError:
        return 0.0, 0.0
    return x, y


def _qr_from_images(package: _Package) -> QrReading | None:
    candidate = None
    images = [name for name in package.names() if name.endswith(_IMAGE_SUFFIXES)]
    for name in images[:_MAX_QR_IMAGES]:
        content = package.read(name, _MAX_IMAGE_BYTES)
        image = _decode_small_image(content or b"", package.limits)
        if image is None:
            continue
        reading = find_invoice_qr(image, where="ofd-image")
        if reading is not None and reading.ok:
            return reading
        candidate = candidate or reading
    return candidate


def _decode_small_image(content: bytes, limits: ScanLimits) -> Image.Image | None:
    try:
        image = Image.open(io.BytesIO(content), formats=["PNG", "JPEG"])
        if image.width * image.height > limits.max_render_pixels:
            return None
        image.load()
    except Exception as error:  # an undecodable picture is just not the QR code
        log.info("skipped an OFD image that does not decode: %r", error)
        return None
    return image
