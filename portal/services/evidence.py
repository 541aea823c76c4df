"""Evidence: files customers (or staff on their behalf) add to a case, read by a job.

An upload is checked at once for what can be known cheaply (size, type from the content, the
uploader's quota), stored under a random key outside ``static/``, and recorded; after the
commit a job reads it (``portal.scans.extract``: normalise, QR, OCR fallback, PDF/OFD/XML)
and stores the fields, a metadata-free preview and a thumbnail. The original is only ever
offered as a download; what staff look at is our own re-encoding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..domain.fields import LOOKUP_FIELDS
from ..extensions import db
from ..models import Case, CaseEvent, CaseState, Upload, UploadState, User, utcnow
from ..queue import enqueue_after_commit
from ..scans.errors import EvidenceRefused
from ..scans.extract import extract
from ..scans.fingerprints import is_near_duplicate
from ..scans.limits import ScanLimits
from ..scans.sniff import HEAD_BYTES, safe_filename, sniff
from ..scans.storage import EvidenceStorage, StoredStream, open_storage
from ..support.ids import parse_id
from . import audit
from .errors import ServiceError

log = logging.getLogger(__name__)
EXTRACT_JOB = "workers.scans.extract_upload"


# An upload in one of these states is never read again.
_FINAL_STATES = (UploadState.EXTRACTED, UploadState.FAILED, UploadState.PURGED)
_STORAGE_SETTINGS = (
    "EVIDENCE_STORAGE",
    "UPLOAD_DIR",
    "S3_BUCKET",
    "S3_PREFIX",
    "S3_ENDPOINT_URL",
    "S3_REGION",
    "S3_ADDRESSING_STYLE",
    "S3_CONNECT_TIMEOUT",
    "S3_READ_TIMEOUT",
)


def storage() -> EvidenceStorage:
    """The evidence store configured for this app (``EVIDENCE_STORAGE``: the local folder
    ``UPLOAD_DIR``, or the S3-compatible bucket every host shares), made once per process."""
    state = current_app.extensions.setdefault("portal.storage", {})
    config = current_app.config
    settings = tuple(config.get(name) for name in _STORAGE_SETTINGS)
    if state.get("settings") != settings:
        state["store"], state["settings"] = open_storage(config), settings
    return state["store"]


def limits() -> ScanLimits:
    """Scan limits from the app's settings."""
    return ScanLimits.from_config(current_app.config)


def _used_bytes(user: User) -> int:
    # Purged evidence no longer takes space.
    used = db.session.scalar(
        select(func.coalesce(func.sum(Upload.size_bytes), 0)).where(
            Upload.uploader_id == user.id, Upload.state != UploadState.PURGED
        )
    )
    return int(used)


def can_add_evidence(case: Case) -> bool:
    """Evidence can be added while the case is waiting for review or for the customer."""
    return case.state in (
        CaseState.AWAITING_EVIDENCE,
        CaseState.AWAITING_REVIEW,
        CaseState.IN_REVIEW,
        CaseState.INFO_REQUESTED,
    )


def add_upload(case: Case, uploader: User, filename: str | None, data: bytes) -> Upload:
    """Accept one file for ``case`` (refusing clearly what cannot be evidence); commits, then
    the extraction job is enqueued. Raises EvidenceRefused or ServiceError."""
    if not can_add_evidence(case):
        raise ServiceError(_l("Files can no longer be added to this case."))
    bounds = limits()
    if len(data) > bounds.max_bytes:
        raise EvidenceRefused("too_large", limit_mb=bounds.max_bytes // (1024 * 1024))
    kind = sniff(data[:HEAD_BYTES], filename)
    quota = current_app.config["UPLOAD_QUOTA_BYTES"]
    if uploader.is_staff is False and _used_bytes(uploader) + len(data) > quota:
        raise ServiceError(
            _l("You have used your upload allowance of %(mb)d MB.", mb=quota // (1024 * 1024))
        )
    stored = storage().save(data, max_bytes=bounds.max_bytes)
    upload = Upload(
        case_id=case.id,
        uploader_id=uploader.id,
        original_name=safe_filename(filename),
        storage_key=stored.key,
        media_type=kind.media_type,
        size_bytes=stored.size,
        sha256=stored.sha256,
        state=UploadState.RECEIVED,
    )
    db.session.add(upload)
    db.session.flush()
    db.session.add(
        CaseEvent(
            case_id=case.id,
            kind="evidence_added",
            actor_id=uploader.id,
            from_staff=uploader.is_staff,
            body=upload.original_name,
        )
    )
    if case.state == CaseState.AWAITING_EVIDENCE:
        case.state = CaseState.AWAITING_REVIEW
    audit.record(
        "upload.received",
        "upload",
        upload.id,
        after={
            "case": case.reference,
            "sha256": stored.sha256,
            "media_type": kind.media_type,
            "size": stored.size,
        },
        actor=uploader,
    )
    _plan(db.session, upload)
    db.session.commit()
    return upload


def _plan(session: Session, upload: Upload) -> None:
    upload.attempts = upload.attempts or 0
    upload.job_id = f"extract-{upload.id}-{upload.attempts}"
    upload.enqueued_at = utcnow()
    enqueue_after_commit(session, EXTRACT_JOB, upload.id, job_id=upload.job_id)


def process(upload_id: int) -> str:
    """Read one upload (the job's work); running it again changes nothing. Returns its state."""
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.state in _FINAL_STATES:
        return upload.state if upload else "missing"
    upload.state = UploadState.PROCESSING
    upload.attempts += 1
    db.session.commit()
    data = storage().read(upload.storage_key)
    try:
        result = extract(data, upload.original_name, limits())
    except EvidenceRefused as refusal:
        upload.state = UploadState.FAILED
        upload.error = refusal.code
        upload.extracted = {"refused": refusal.code, "params": refusal.params}
        upload.processed_at = utcnow()
        audit.record("upload.refused", "upload", upload.id, after={"reason": refusal.code})
        db.session.commit()
        return upload.state
    store = storage()
    if result.preview is not None:
        upload.preview_key = store.save(result.preview.data).key
    if result.thumbnail is not None:
        upload.thumbnail_key = store.save(result.thumbnail.data).key
    upload.extracted = result.to_json()
    upload.perceptual_hash = result.perceptual_hash
    upload.pages = result.pages
    upload.state = UploadState.EXTRACTED
    upload.processed_at = utcnow()
    audit.record(
        "upload.extracted",
        "upload",
        upload.id,
        after={"fields": result.values(), "ocr": result.ocr_used},
    )
    db.session.commit()
    return upload.state


def sweep(grace_seconds: int = 120) -> int:
    """Re-enqueue uploads still waiting (or stuck processing) long after they were enqueued."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    stuck = db.session.scalars(
        select(Upload)
        .where(
            Upload.state.in_((UploadState.RECEIVED, UploadState.PROCESSING)),
            or_(Upload.enqueued_at.is_(None), Upload.enqueued_at < cutoff),
            Upload.attempts < 3,
        )
        .limit(500)
    ).all()
    for upload in stuck:
        upload.state = UploadState.RECEIVED
        _plan(db.session, upload)
    db.session.commit()
    return len(stuck)


@dataclass(frozen=True)
class Served:
    """A file to send, streamed: the open stored file (closed by whoever sends it, e.g. with
    ``response.call_on_close``), its size in bytes, media type and download name."""

    stream: StoredStream
    size: int
    media_type: str
    download_name: str
    head: bytes = b""  # the first bytes, already read from the stream to tell its type

    def chunks(self):
        """The file's bytes, in pieces, never all at once."""
        if self.head:
            yield self.head
        yield from self.stream.chunks()


def upload_for(user: User, upload_id: int) -> Upload | None:
    """The upload if ``user`` may see it (the case's customer or staff); else None (→ 404)."""
    upload = db.session.get(Upload, upload_id) if parse_id(upload_id) else None
    if upload is None or upload.case is None:
        return None
    if user.is_staff:
        return upload
    # A customer gets back only files the checks passed: a refused one (a PDF with JavaScript,
    # say) or one not yet checked is never served to them, even their own. Staff get those
    # too, always as attachments (see customer.evidence_file).
    if upload.case.customer_id == user.id and upload.state == UploadState.EXTRACTED:
        return upload
    return None


def file_for(upload: Upload, variant: str) -> Served | None:
    """The original (download only), the re-encoded preview or the thumbnail, opened for
    streaming; None once the evidence was purged under the retention policy (or when its file
    is missing from storage, which is logged)."""
    if upload.is_purged:
        return None
    key = {
        "original": upload.storage_key,
        "preview": upload.preview_key,
        "thumbnail": upload.thumbnail_key,
    }.get(variant)
    if not key:
        return None
    try:
        stream = storage().open(key)
    except FileNotFoundError:
        log.warning("the %s file of upload %s is missing from storage", variant, upload.id)
        return None
    if variant == "original":
        return Served(stream, stream.size, upload.media_type, upload.original_name)
    head = stream.read(8)
    media = "image/png" if head == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    extension = ".png" if media == "image/png" else ".jpg"
    return Served(stream, stream.size, media, f"{variant}-{upload.id}{extension}", head)


def confirm_fields(case: Case, customer: User, values: dict[str, str]) -> None:
    """The customer confirms (or corrects) the fields read from their evidence. Commits."""
    case.confirmed_fields = {k: (v or "").strip() for k, v in values.items()}
    case.confirmed_at = utcnow()
    db.session.add(CaseEvent(case_id=case.id, kind="fields_confirmed", actor_id=customer.id))
    audit.record(
        "case.fields_confirmed", "case", case.reference, after=case.confirmed_fields, actor=customer
    )
    db.session.commit()


def near_duplicates(upload: Upload, max_distance: int = 6) -> list[Upload]:
    """Uploads on other cases that are the same picture re-encoded (perceptual hash)."""
    if not upload.perceptual_hash:
        return []
    others = db.session.scalars(
        select(Upload)
        .where(
            Upload.perceptual_hash.is_not(None),
            Upload.id != upload.id,
            Upload.case_id != upload.case_id,
        )
        .limit(5000)
    ).all()
    number = _number(upload)
    # Two invoices of one layout can look alike; when both numbers were read, they must agree.
    return [
        o
        for o in others
        if is_near_duplicate(upload.perceptual_hash, o.perceptual_hash, max_distance=max_distance)
        and not (number and _number(o) and _number(o) != number)
    ]


def _number(upload: Upload) -> str | None:
    for item in (upload.extracted or {}).get("fields", []):
        if item.get("name") == "number":
            return item.get("value")
    return None


def read_for_lookup(filename: str | None, data: bytes) -> dict[str, str]:
    """Read an invoice file to fill the lookup form, without storing anything.

    Runs in the web request, so only the fast readers are used (QR, PDF text, OFD, XML), never
    OCR; returns the lookup fields found (possibly none). Raises EvidenceRefused.
    """
    from dataclasses import replace

    from ..scans.limits import OcrPolicy

    result = extract(data, filename, replace(limits(), ocr=OcrPolicy.NEVER))
    values = result.values()
    # The evidence names the check code in full; the lookup asks for its last six digits.
    found = {name: values[name] for name in LOOKUP_FIELDS if values.get(name)}
    check = values.get("check_code", "")
    if len(check) >= 6:
        found["check_code_last6"] = check[-6:]
    return found


# How staff see where a value came from (issue 18); "pdf" and "ofd" are sources of readings
# stored before sources were named by kind.
_SOURCE_LABELS = {
    "qr": _l("QR code"),
    "xml": _l("invoice data file"),
    "text": _l("printed text"),
    "ocr": _l("OCR"),
    "pdf": _l("printed text"),
    "ofd": _l("invoice data file"),
}
_WHERE_LABELS = {
    "pdf-text": _l("PDF text layer"),
    "ofd-attachment": _l("OFD attached invoice XML"),
    "ofd-customdata": _l("OFD custom data"),
    "ofd-page": _l("OFD page text"),
    "ofd-xml": _l("OFD attached invoice XML"),
    "xml": _l("XML file"),
}


def source_label(source: str, where: str | None, confidence: float) -> str:
    """Where a read value came from, for the review page: "QR code · 100%",
    "printed text (PDF text layer) · 100%", "OCR · 87%"."""
    label = str(_SOURCE_LABELS.get(source, source))
    detail = _WHERE_LABELS.get(where or "")
    if detail:
        label = f"{label} ({detail})"
    return f"{label} · {confidence:.0%}"


def read_evidence(filename: str | None, data: bytes):
    """Read an invoice file for a machine client (``POST /api/v1/evidence:read``), without
    storing it: the same limits and refusals as an upload, the OCR fallback as configured.

    Returns the ``Extraction`` (its fields with their provenance, the conflicts, the checks,
    ``readable``); raises EvidenceRefused.
    """
    return extract(data, filename, limits())
