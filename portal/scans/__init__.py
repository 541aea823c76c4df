"""Evidence intake: photos, scans, PDF, OFD and 数电票 XML turned into checked invoice fields.

No Flask and no database here: services and jobs call these functions with bytes and settings.

- ``extract``: ``extract(data, filename, limits) -> Extraction``, the one entry point of a scan
  job; ``Extraction``, ``ExtractedField``, ``FieldSource``.
- ``limits``: ``ScanLimits`` (size, pixels, pages, archives, XML, OCR policy), ``OcrPolicy``.
- ``errors``: ``EvidenceRefused`` with a stable ``code`` and ``message(locale)``.
- ``sniff``: ``sniff(head, filename) -> FileKind``, ``safe_filename(name)``.
- ``storage``: ``EvidenceStorage`` protocol, ``LocalStorage(root)``, ``StoredFile``,
  ``open_storage(settings)``; ``storage_s3``: ``S3Storage`` (the bucket every host shares).
- ``images``: ``normalise(data) -> NormalisedImage`` (upright, re-encoded, metadata stripped).
- ``fingerprints``: ``sha256_hex``, ``perceptual_hash``, ``hamming_distance``,
  ``is_near_duplicate``.
- ``qr``: ``find_invoice_qr(image) -> QrReading``; ``ocr``: ``read_invoice_words(image)``
  (upright, only what can hold a field); ``layout``: ``fields_from_words(words)`` (values by
  position beside their labels, parties by block); ``textfields``: ``TextField``,
  ``canonical_value``.
- ``pdf``, ``ofd``, ``einvoice_xml``: the document readers; ``checks``: ``evidence_checks``.
"""

from portal.scans.checks import Check
from portal.scans.errors import EvidenceRefused
from portal.scans.extract import ExtractedField, Extraction, FieldSource, extract
from portal.scans.fingerprints import hamming_distance, is_near_duplicate, sha256_hex
from portal.scans.limits import OcrPolicy, ScanLimits
from portal.scans.sniff import FileKind, safe_filename, sniff
from portal.scans.storage import EvidenceStorage, LocalStorage, StoredFile

__all__ = [
    "Check",
    "EvidenceRefused",
    "EvidenceStorage",
    "ExtractedField",
    "Extraction",
    "FieldSource",
    "FileKind",
    "LocalStorage",
    "OcrPolicy",
    "ScanLimits",
    "StoredFile",
    "extract",
    "hamming_distance",
    "is_near_duplicate",
    "safe_filename",
    "sha256_hex",
    "sniff",
]
