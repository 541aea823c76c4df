"""The one entry point a scan job calls: evidence bytes in, checked invoice fields out.

``extract`` sniffs the type from the content, then: a photo is normalised (upright, re-encoded,
metadata gone), its QR code read downscaled first, OCR only as the fallback; a PDF's QR image
and text layer (by position) are read exactly and its first page rendered to a picture; an OFD's
attached invoice XML, CustomDatas, page and template text, and a 数电票 XML's tags are read
exactly. QR fields win over printed text; every value another source disagrees with is kept as
a conflict and flagged for staff, as is a total that is not amount + tax. Every field carries
its provenance (source, the part it came from, a confidence), and the domain rules are applied
as checks.

Public API:

- ``FieldSource``: ``qr``, ``xml`` (a structured part the invoicing system wrote), ``text``
  (a PDF or OFD text layer), ``ocr``.
- ``ExtractedField(name, value, source, confidence, where)``; ``Conflict(name, fields)``.
- ``Extraction``: ``kind``, ``media_type``, ``display_name``, ``size_bytes``, ``sha256``,
  ``perceptual_hash``, ``fields``, ``conflicts``, ``checks``, ``qr``, ``preview`` (the only
  rendering to serve), ``thumbnail``, ``pages``, ``ocr_used``, ``timings_ms``; ``readable``
  (an invoice number was read), ``field(name)``, ``value(name)``, ``values()``, ``to_json()``.
- ``extract(data, filename, limits=None) -> Extraction``: or raise ``EvidenceRefused``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from PIL import Image

from portal.domain import InvoiceRuleError, QrPayload, parse_identity
from portal.domain.fields import EXTRACTED_FIELDS
from portal.scans.background import Background
from portal.scans.checks import Check, evidence_checks
from portal.scans.einvoice_xml import read_invoice_xml
from portal.scans.errors import EvidenceRefused
from portal.scans.fingerprints import sha256_hex
from portal.scans.images import EncodedImage, encode_image, make_thumbnail, normalise
from portal.scans.layout import fields_from_words
from portal.scans.limits import OcrPolicy, ScanLimits, megabytes
from portal.scans.ocr import read_invoice_words
from portal.scans.ofd import read_ofd
from portal.scans.pdf import read_pdf
from portal.scans.qr import QrReading, find_invoice_qr
from portal.scans.reading import DocumentReading
from portal.scans.sniff import HEAD_BYTES, FileKind, safe_filename, sniff


class FieldSource(StrEnum):
    """Where a field's value was read."""

    QR = "qr"
    XML = "xml"
    TEXT = "text"
    OCR = "ocr"


# When sources disagree, the more exact one wins (and the disagreement is flagged): data the
# invoicing system wrote, then the QR code it printed, then its text layer, then OCR's reading.
_SOURCE_RANK = {
    FieldSource.XML: 0,
    FieldSource.QR: 1,
    FieldSource.TEXT: 2,
    FieldSource.OCR: 3,
}
# The fields a lookup or a re-entry needs; missing ones make OcrPolicy.ALWAYS run OCR.
_CORE_FIELDS = ("number", "issue_date", "amount", "tax", "total", "buyer_tax_id")


@dataclass(frozen=True)
class ExtractedField:
    """One invoice field read from the evidence, in canonical text form.

    Names are those of the registry protocol (``code``, ``number``, ``kind``, ``issue_date``
    as YYYY-MM-DD, ``amount``/``tax``/``total`` as decimal strings, ``check_code``,
    ``buyer_tax_id``, ``buyer_name``, ``seller_tax_id``, ``seller_name``). ``confidence`` is 1.0
    for exact sources and OCR's own score otherwise. ``where`` names the part it was read from
    (``pdf-text``, ``pdf-image``, ``ofd-attachment``, ``ofd-customdata``, ``ofd-page``, ``xml``,
    ``ocr``, or the pass that found the QR code).
    """

    name: str
    value: str
    source: FieldSource
    confidence: float
    where: str = ""

    def to_json(self) -> dict[str, object]:
        """Return the field as plain JSON values."""
        return {
            "name": self.name,
            "value": self.value,
            "source": self.source.value,
            "where": self.where,
            "confidence": round(self.confidence, 3),
        }


@dataclass(frozen=True)
class Conflict:
    """A field on which sources disagree: every value read, the chosen one first."""

    name: str
    fields: tuple[ExtractedField, ...]

    def to_json(self) -> dict[str, object]:
        """Return the conflict as plain JSON values."""
        return {"name": self.name, "values": [item.to_json() for item in self.fields]}


@dataclass(frozen=True)
class Extraction:
    """Everything read from one piece of evidence, ready to store and to show."""

    kind: FileKind
    display_name: str
    size_bytes: int
    sha256: str
    fields: tuple[ExtractedField, ...]
    checks: tuple[Check, ...]
    conflicts: tuple[Conflict, ...] = ()
    qr: QrReading | None = None
    preview: EncodedImage | None = None
    thumbnail: EncodedImage | None = None
    perceptual_hash: str | None = None
    pages: int = 1
    ocr_used: bool = False
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def media_type(self) -> str:
        """The media type found from the content (never the one the browser claimed)."""
        return self.kind.media_type

    def field(self, name: str) -> ExtractedField | None:
        """Return the field called ``name``, or None when it was not read."""
        return next((item for item in self.fields if item.name == name), None)

    def value(self, name: str) -> str | None:
        """Return the value of the field called ``name``, or None."""
        item = self.field(name)
        return item.value if item is not None else None

    def values(self) -> dict[str, str]:
        """Return every field as name -> value."""
        return {item.name: item.value for item in self.fields}

    @property
    def readable(self) -> bool:
        """True when the invoice's number was read; otherwise the uploader types the fields
        and staff look at the file itself."""
        return self.value("number") is not None

    @property
    def all_checks_pass(self) -> bool:
        """True when every check holds (and there was at least one)."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, object]:
        """Return what is worth storing with the upload (no image bytes) as JSON values."""
        return {
            "kind": self.kind.name.lower(),
            "media_type": self.media_type,
            "display_name": self.display_name,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "perceptual_hash": self.perceptual_hash,
            "pages": self.pages,
            "readable": self.readable,
            "fields": [item.to_json() for item in self.fields],
            "conflicts": [conflict.to_json() for conflict in self.conflicts],
            "checks": [check.to_json() for check in self.checks],
            "qr": None
            if self.qr is None
            else {
                "text": self.qr.text,
                "ok": self.qr.ok,
                "where": self.qr.where,
                "error": self.qr.error.code if self.qr.error else None,
            },
            "ocr_used": self.ocr_used,
            "timings_ms": {name: round(ms, 1) for name, ms in self.timings_ms.items()},
        }


def extract(data: bytes, filename: str | None, limits: ScanLimits | None = None) -> Extraction:
    """Read one piece of evidence: check its size and type, make it safe to show, read the
    invoice's fields and apply the domain checks.

    Raises ``EvidenceRefused`` with a message for the uploader (``empty``, ``too_large``,
    ``unsupported_type``, ``extension_mismatch``, ``active_content``, ``corrupt``,
    ``too_many_pixels``, ``xml_entities``, ``encrypted``, ``archive_too_large``, ``not_ofd``);
    any other exception is a bug.
    """
    limits = limits or ScanLimits()
    clock = _Clock()
    if not data:
        raise EvidenceRefused("empty")
    if len(data) > limits.max_bytes:
        raise EvidenceRefused("too_large", limit_mb=megabytes(limits.max_bytes))
    kind = sniff(data[:HEAD_BYTES], filename)
    clock.lap("sniff")
    # Hashing releases the GIL: it runs beside decoding instead of before it.
    digest = Background(sha256_hex, data)
    if kind.is_image:
        parts = _read_image(data, kind, limits, clock)
    else:
        parts = _read_document(data, kind, limits, clock)
    values = {item.name: item.value for item in parts.fields}
    checks = evidence_checks(
        values, qr=parts.qr, conflicts=[conflict.name for conflict in parts.conflicts]
    )
    clock.lap("checks")
    return Extraction(
        kind=kind,
        display_name=safe_filename(filename),
        size_bytes=len(data),
        sha256=digest.result(),
        fields=parts.fields,
        checks=tuple(checks),
        conflicts=parts.conflicts,
        qr=parts.qr,
        preview=parts.preview,
        thumbnail=parts.thumbnail,
        perceptual_hash=parts.perceptual_hash,
        pages=parts.pages,
        ocr_used=parts.ocr_used,
        timings_ms=clock.laps,
    )


@dataclass
class _Parts:
    fields: tuple[ExtractedField, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    qr: QrReading | None = None
    preview: EncodedImage | None = None
    thumbnail: EncodedImage | None = None
    perceptual_hash: str | None = None
    pages: int = 1
    ocr_used: bool = False


def _read_image(data: bytes, kind: FileKind, limits: ScanLimits, clock: _Clock) -> _Parts:
    picture = normalise(data, kind, limits)
    clock.lap("normalise")
    qr = find_invoice_qr(
        picture.image, downscaled=picture.half, full_resolution=picture.full_resolution
    )
    clock.lap("qr")
    preview = picture.display
    clock.lap("display")  # waiting for the re-encoding that ran beside the QR pass
    candidates = _qr_fields(qr)
    ocr_used = _wants_ocr(limits.ocr, candidates)
    if ocr_used:
        candidates += _ocr_fields(picture.image)
        clock.lap("ocr")
    chosen, conflicts = _merge(candidates)
    return _Parts(
        fields=chosen,
        conflicts=conflicts,
        qr=qr,
        preview=preview,
        thumbnail=picture.thumbnail,
        perceptual_hash=picture.perceptual_hash,
        ocr_used=ocr_used,
    )


def _read_document(data: bytes, kind: FileKind, limits: ScanLimits, clock: _Clock) -> _Parts:
    readers = {FileKind.PDF: read_pdf, FileKind.OFD: read_ofd, FileKind.XML: read_invoice_xml}
    reading: DocumentReading = readers[kind](data, limits)
    clock.lap(reading.source)
    candidates = _qr_fields(reading.qr)
    candidates += [
        ExtractedField(
            item.name,
            item.field.value,
            FieldSource(item.source),
            item.field.confidence,
            item.where,
        )
        for item in reading.candidates
    ]
    parts = _Parts(qr=reading.qr, pages=reading.pages)
    if reading.page_image is not None:
        parts.preview = encode_image(reading.page_image, "PNG")
        parts.thumbnail, parts.perceptual_hash = make_thumbnail(
            reading.page_image, limits.thumbnail_side
        )
        clock.lap("preview")
        # A scanned PDF has pictures and no text layer: OCR is the only way to read it.
        if _wants_ocr(limits.ocr, candidates):
            candidates += _ocr_fields(reading.page_image)
            parts.ocr_used = True
            clock.lap("ocr")
    parts.fields, parts.conflicts = _merge(candidates)
    return parts


def _wants_ocr(policy: OcrPolicy, candidates: Iterable[ExtractedField]) -> bool:
    names = {item.name for item in candidates}
    if policy is OcrPolicy.NEVER:
        return False
    if policy is OcrPolicy.ALWAYS:
        return not names.issuperset(_CORE_FIELDS)
    return "number" not in names


def _ocr_fields(image: Image.Image) -> list[ExtractedField]:
    found = fields_from_words(read_invoice_words(image))
    return [
        ExtractedField(name, text.value, FieldSource.OCR, text.confidence, "ocr")
        for name, text in found.items()
    ]


def _qr_fields(qr: QrReading | None) -> list[ExtractedField]:
    if qr is None or qr.payload is None:
        return []
    payload: QrPayload = qr.payload
    identity = payload.identity
    values = {
        "code": identity.code or None,
        "number": identity.number,
        "kind": identity.kind.value,
        "issue_date": payload.issue_date.isoformat(),
        payload.amount_meaning.value: str(payload.amount),
        "check_code": payload.check_code,
        "seller_tax_id": str(payload.seller_tax_id) if payload.seller_tax_id else None,
    }
    return [
        ExtractedField(name, value, FieldSource.QR, 1.0, qr.where)
        for name, value in values.items()
        if value is not None
    ]


def _merge(
    candidates: list[ExtractedField],
) -> tuple[tuple[ExtractedField, ...], tuple[Conflict, ...]]:
    """Pick one value per field (most confident, then most exact source); keep every other
    value of a field whose sources disagree. The invoice kind is derived from code and number
    when no QR gave it.
    """
    best: dict[str, ExtractedField] = {}
    disagreeing: dict[str, list[ExtractedField]] = {}
    for item in sorted(candidates, key=lambda f: (-f.confidence, _SOURCE_RANK[f.source])):
        chosen = best.setdefault(item.name, item)
        if chosen.value != item.value:
            others = disagreeing.setdefault(item.name, [chosen])
            if all(other.value != item.value for other in others):
                others.append(item)
    if "kind" not in best and "number" in best:
        number = best["number"]
        code = best.get("code")
        try:
            identity = parse_identity(code.value if code else "", number.value)
        except InvoiceRuleError:
            pass
        else:
            best["kind"] = ExtractedField(
                "kind", identity.kind.value, number.source, number.confidence, number.where
            )
    order = EXTRACTED_FIELDS
    fields = sorted(best.values(), key=lambda f: order.index(f.name) if f.name in order else 99)
    conflicts = tuple(Conflict(name, tuple(values)) for name, values in disagreeing.items())
    return tuple(fields), conflicts


class _Clock:
    """Milliseconds spent in each stage, for the job's log and the benchmark."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + (now - self._last) * 1000
        self._last = now
