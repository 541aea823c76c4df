"""The bounds every reader works within, so that no upload can exhaust memory, disk or time.

Public API:

- ``ScanLimits``: size, pixel, page, archive and XML bounds plus the OCR policy, with defaults
  fit for invoices; ``ScanLimits.from_config(config)`` reads them from the Flask config.
- ``OcrPolicy``: when the OCR fallback runs.
- ``megabytes(n) -> int | float``: a byte limit as people read it (``20``, ``0.5``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum

MB = 1024 * 1024


class OcrPolicy(StrEnum):
    """When to run OCR, the slow (≈1 s a page) last resort.

    ``FALLBACK``: only when nothing exact (QR code, PDF text) gave the invoice's identity.
    ``ALWAYS``: also to fill what a QR code does not carry (tax, total, buyer tax ID).
    ``NEVER``: not at all (tests, benchmarks, a machine without the model).
    """

    FALLBACK = "fallback"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True)
class ScanLimits:
    """Bounds for one piece of evidence. Every field is a setting (see ``from_config``)."""

    max_bytes: int = 20 * MB
    # Pillow refuses more than twice its limit outright; we refuse anything above this.
    max_pixels: int = 50_000_000
    # Long side of the re-encoded picture staff see; phone photos are scaled down to about it.
    display_max_side: int = 2048
    thumbnail_side: int = 320
    # Pages of a PDF whose text is read (an invoice has one, a long item list two or three).
    max_pdf_pages: int = 3
    # Pixels of one rendered PDF page (the page box of a hostile PDF can be 200 × 200 inches).
    max_render_pixels: int = 12_000_000
    max_zip_members: int = 1000
    max_zip_bytes: int = 64 * MB
    max_xml_bytes: int = 4 * MB
    ocr: OcrPolicy = OcrPolicy.FALLBACK

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> ScanLimits:
        """Build limits from a Flask config: ``MAX_CONTENT_LENGTH`` for the size and
        ``SCAN_<FIELD>`` (``SCAN_MAX_PIXELS``, ``SCAN_OCR`` ...) for the rest; absent keys keep
        their defaults.
        """
        limits = cls()
        changes: dict[str, object] = {}
        if config.get("MAX_CONTENT_LENGTH"):
            changes["max_bytes"] = int(config["MAX_CONTENT_LENGTH"])  # type: ignore[arg-type]
        for field in fields(cls):
            key = f"SCAN_{field.name.upper()}"
            if config.get(key) is not None:
                value = config[key]
                changes[field.name] = OcrPolicy(value) if field.name == "ocr" else int(value)  # type: ignore[arg-type]
        return replace(limits, **changes)


def megabytes(limit: int) -> int | float:
    """Return ``limit`` bytes in MB (MiB), whole when it is whole: ``20``, ``2.5``."""
    value = limit / MB
    return int(value) if value.is_integer() else round(value, 1)
