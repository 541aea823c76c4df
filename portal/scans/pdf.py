"""PDF e-invoices: the text layer and the embedded QR code read exactly, the first page rendered
to a picture on the server so that the PDF itself is never opened in the portal's origin.

The text layer is read glyph by glyph with its position (PDFium's text page and character
boxes), turned the way the page is shown, and the fields are found by geometry
(``portal.scans.layout``): content-stream order puts a section's labels first and its values
later, so the order of the text says nothing.

PDFs that carry scripts or other actions (JavaScript, Launch, embedded files, XFA forms) are
refused: an invoice needs none of them. They are found by walking the parsed object graph
(compressed object streams and ``#xx``-escaped names included), and by a raw byte scan.

Public API:

- ``ACTIVE_KEYS``, ``ACTIVE_ACTIONS``: what counts as active content.
- ``read_pdf(data, limits) -> DocumentReading``: or raise ``EvidenceRefused``.
- ``render_page(data, limits, index=0) -> PIL.Image``: one page as RGB pixels (pypdfium2).
- ``page_words(page) -> list[Word]``: a PDFium page's glyphs with their boxes, y downwards.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections import Counter

import pypdf
import pypdfium2
import pypdfium2.raw
from PIL import Image
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from portal.scans.errors import EvidenceRefused
from portal.scans.layout import Word, fields_from_words
from portal.scans.layout import text_lines as lines_of
from portal.scans.limits import ScanLimits
from portal.scans.qr import QrReading, find_invoice_qr
from portal.scans.reading import DocumentReading, candidates

log = logging.getLogger(__name__)

# Dictionary keys that only exist to run something or to smuggle files.
ACTIVE_KEYS = frozenset(
    {"/JavaScript", "/JS", "/Launch", "/EmbeddedFiles", "/EmbeddedFile", "/RichMedia", "/XFA"}
)
# Action types (/S) that run code, start programs, or send data somewhere.
ACTIVE_ACTIONS = frozenset(
    {
        "/JavaScript",
        "/Launch",
        "/SubmitForm",
        "/ImportData",
        "/RichMediaExecute",
        "/GoToE",
        "/Rendition",
    }
)
_RAW_ACTIVE = re.compile(
    rb"/(JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA)(?=[\s/<>\[\]()%]|$)"
)
# An invoice PDF has a few hundred objects; a walk longer than this is a hostile file.
_MAX_OBJECTS = 200_000
# Scale for rendering: 2 = 144 dpi, enough to read the QR code and the smallest print.
_RENDER_SCALE = 2.0
# Image filters we let Pillow decode (JBIG2 would start an external program; JPX is rare).
_DECODABLE_FILTERS = frozenset({"/FlateDecode", "/DCTDecode", "/Fl", "/DCT"})
_QR_IMAGE_MIN_SIDE = 21
_MAX_QR_IMAGES = 8
# An invoice page has under 2,000 glyphs; a page with more is read only that far.
_MAX_GLYPHS = 20_000
# Radians: glyphs turned further than this belong to the seal (全国统一发票监制章), not the text.
_MAX_GLYPH_ANGLE = 0.05


def read_pdf(data: bytes, limits: ScanLimits | None = None) -> DocumentReading:
    """Read a PDF invoice: text fields from the text layer, the invoice QR code from the page's
    images (or from the rendered page), and the first page rendered for viewing.

    Refuses with ``active_content`` (scripts, launch actions, embedded files), ``encrypted``
    (a password is needed) or ``corrupt``.
    """
    limits = limits or ScanLimits()
    active = _RAW_ACTIVE.search(data)
    if active is not None:
        raise EvidenceRefused("active_content", what=active.group(1).decode("ascii"))
    reader = _open(data)
    try:
        _refuse_active_content(reader)
        page_count = len(reader.pages)
        if page_count == 0:
            raise EvidenceRefused("corrupt")
        qr = _qr_from_images(reader.pages[0], limits)
    except EvidenceRefused:
        raise
    except Exception as error:  # pypdf raises many types on malformed structure
        log.info("refused a PDF that does not parse: %r", error)
        raise EvidenceRefused("corrupt") from error
    fields, text_lines = _text_fields(data, min(page_count, limits.max_pdf_pages))
    page_image = render_page(data, limits)
    if qr is None or not qr.ok:
        from_page = find_invoice_qr(page_image, where="pdf-page")
        if from_page is not None and (qr is None or from_page.ok):
            qr = from_page
    return DocumentReading(
        source="pdf",
        candidates=tuple(candidates(fields, "text", "pdf-text")),
        qr=qr,
        page_image=page_image,
        pages=page_count,
        text_lines=text_lines,
    )


def _text_fields(data: bytes, pages: int) -> tuple[dict, tuple[str, ...]]:
    """Fields from the text layer: the first page's, then what later pages add (a long
    invoice prints its totals on the last page)."""
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as error:
        raise EvidenceRefused("corrupt") from error
    fields: dict = {}
    text_lines: list[str] = []
    try:
        for index in range(min(pages, len(document))):
            page = document[index]
            try:
                words = page_words(page)
            finally:
                page.close()
            text_lines.extend(lines_of(words))
            for name, value in fields_from_words(words).items():
                fields.setdefault(name, value)
    except pypdfium2.PdfiumError as error:
        raise EvidenceRefused("corrupt") from error
    finally:
        document.close()
    return fields, tuple(line for line in text_lines if line)


def page_words(page: pypdfium2.PdfPage) -> list[Word]:
    """The page's glyphs with their boxes, turned so that its text runs left to right (y
    growing downwards), whatever ``/Rotate`` or a rotated content matrix did. Whitespace glyphs
    are left out (gaps are measured, not spelled), and so are glyphs at another angle than the
    page's text: the seal stamped over the header."""
    textpage = page.get_textpage()
    try:
        glyphs = []
        for index in range(min(textpage.count_chars(), _MAX_GLYPHS)):
            text = textpage.get_text_range(index, 1)
            if not text or text.isspace():
                continue
            left, bottom, right, top = textpage.get_charbox(index, loose=True)
            if right <= left or top <= bottom:
                continue
            angle = pypdfium2.raw.FPDFText_GetCharAngle(textpage.raw, index) % math.tau
            glyphs.append((text, left, bottom, right, top, angle))
    finally:
        textpage.close()
    if not glyphs:
        return []
    # The text's own direction, to a quarter turn: most glyphs share it.
    quarters = Counter(round(angle / (math.pi / 2)) % 4 for *_, angle in glyphs)
    quarter = quarters.most_common(1)[0][0]
    upright = quarter * math.pi / 2
    words = []
    # PDFium measures the angle clockwise: text at 3/4 of a turn runs up the page, and one
    # quarter turn clockwise brings it back to left-to-right.
    turns = (4 - quarter) % 4
    for text, left, bottom, right, top, angle in glyphs:
        off = abs((angle - upright + math.pi) % math.tau - math.pi)
        if off <= _MAX_GLYPH_ANGLE:
            words.append(_turned_word(text, (left, bottom, right, top), turns))
    return words


def _turned_word(text: str, box: tuple[float, float, float, float], turns: int) -> Word:
    """A glyph box in PDF space (y up) turned ``turns`` quarter turns clockwise, y down."""
    left, bottom, right, top = box
    corners = [(left, bottom), (right, top)]
    for _ in range(turns):  # one quarter turn clockwise: (x, y) -> (y, -x)
        corners = [(y, -x) for x, y in corners]
    xs, ys = [x for x, _ in corners], [-y for _, y in corners]
    return Word(text, min(xs), min(ys), max(xs), max(ys))


def render_page(data: bytes, limits: ScanLimits | None = None, index: int = 0) -> Image.Image:
    """Render page ``index`` to RGB pixels with PDFium, never above ``limits.max_render_pixels``
    (a hostile page box can be 200 × 200 inches). No scripts run: forms are not initialised.
    """
    limits = limits or ScanLimits()
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as error:
        raise EvidenceRefused("corrupt") from error
    try:
        page = document[index]
        try:
            width, height = page.get_size()
            area = max(width * height, 1.0)
            scale = min(_RENDER_SCALE, math.sqrt(limits.max_render_pixels / area))
            bitmap = page.render(scale=scale, rev_byteorder=True)
            try:
                return bitmap.to_pil().convert("RGB")
            finally:
                bitmap.close()
        finally:
            page.close()
    except pypdfium2.PdfiumError as error:
        raise EvidenceRefused("corrupt") from error
    finally:
        document.close()


def _open(data: bytes) -> pypdf.PdfReader:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise EvidenceRefused("encrypted")
    except EvidenceRefused:
        raise
    except pypdf.errors.DependencyError as error:
        # AES needs the cryptography package; an invoice PDF has no reason to be encrypted.
        raise EvidenceRefused("encrypted") from error
    except Exception as error:
        log.info("refused a PDF that does not open: %r", error)
        raise EvidenceRefused("corrupt") from error
    return reader


def _refuse_active_content(reader: pypdf.PdfReader) -> None:
    """Walk every object reachable from the trailer; refuse at the first active feature."""
    seen: set[tuple[int, int]] = set()
    stack: list[object] = [reader.trailer]
    visited = 0
    while stack:
        node = stack.pop()
        visited += 1
        if visited > _MAX_OBJECTS:
            raise EvidenceRefused("corrupt")
        if isinstance(node, IndirectObject):
            reference = (node.idnum, node.generation)
            if reference in seen:
                continue
            seen.add(reference)
            stack.append(node.get_object())
        elif isinstance(node, DictionaryObject):
            for key, value in node.items():
                if key in ACTIVE_KEYS:
                    raise EvidenceRefused("active_content", what=str(key).lstrip("/"))
                if key == "/S" and value in ACTIVE_ACTIONS:
                    raise EvidenceRefused("active_content", what=str(value).lstrip("/"))
                stack.append(value)
        elif isinstance(node, ArrayObject):
            stack.extend(node)


def _qr_from_images(page: pypdf.PageObject, limits: ScanLimits) -> QrReading | None:
    """Look for the invoice QR code among the page's image XObjects (exact pixels, no render)."""
    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else None
    if not isinstance(resources, DictionaryObject):
        return None
    xobjects = resources.get("/XObject")
    xobjects = xobjects.get_object() if xobjects is not None else None
    if not isinstance(xobjects, DictionaryObject):
        return None
    candidate = None
    for reference in list(xobjects.values())[:_MAX_QR_IMAGES]:
        image = _decode_image(reference.get_object(), limits)
        if image is None:
            continue
        reading = find_invoice_qr(image, where="pdf-image")
        if reading is not None and reading.ok:
            return reading
        candidate = candidate or reading
    return candidate


def _decode_image(xobject: object, limits: ScanLimits) -> Image.Image | None:
    if not isinstance(xobject, DictionaryObject) or xobject.get("/Subtype") != "/Image":
        return None
    width, height = _integer(xobject.get("/Width")), _integer(xobject.get("/Height"))
    if min(width, height) < _QR_IMAGE_MIN_SIDE:
        return None
    if width * height > limits.max_render_pixels:
        return None
    filters = xobject.get("/Filter")
    filters = filters.get_object() if filters is not None else None
    names = list(filters) if isinstance(filters, ArrayObject) else [filters] if filters else []
    if any(name not in _DECODABLE_FILTERS for name in names):
        return None
    try:
        return xobject.decode_as_image()  # type: ignore[attr-defined]
    except Exception as error:  # an undecodable picture is just not the QR code
        log.info("skipped a PDF image that does not decode: %r", error)
        return None


def _integer(value: object) -> int:
    value = value.get_object() if isinstance(value, IndirectObject) else value
    return int(value) if isinstance(value, int) else 0
