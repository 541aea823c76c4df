"""Privacy: evidence retention (purging the files of long-closed cases) and a customer's own data.

Retention. Evidence files of a case closed (resolved, rejected, withdrawn or merged) more than
``EVIDENCE_RETENTION_MONTHS`` months ago (default 24) are deleted: the original, the preview
and the thumbnail. The ``Upload`` row stays (the case's record and the audit trail speak of
it) in state ``purged`` with its ``purged_at``, ``preview_key``/``thumbnail_key``/
``perceptual_hash`` cleared and ``extracted`` (fields read *from* the evidence) emptied;
``storage_key`` (NOT NULL, unique, random) and ``sha256`` stay as the record of what was
held. One ``upload.purged`` audit row is written per upload; ``audit_events`` is never touched.
A merged case's evidence waits until the case it was merged into is closed long enough too.

Order of work, per batch: rows marked and audit rows added (not committed), files deleted,
then commit. A crash after the deletions leaves rows not yet marked whose files are gone; the
next run finds them again (deleting a missing file is no error) and finishes them, so the
purge always converges and never marks a row whose files may still exist.

A customer's data. :func:`export_customer_data` builds a ZIP with ``data.json`` (the account,
their cases with the public timeline and messages, evidence metadata, buyer links, ratings,
lookups, notifications, API token names) and the originals of their evidence under
``evidence/<reference>/``. Internal staff notes and staff identities are left out, as in
the pages the customer sees.

Public API:

- ``CLOSED_CASE_STATES``
- ``retention_months() -> int``: the setting, read with a default.
- ``retention_cutoff(now, months) -> datetime``: ``now`` minus whole calendar months.
- ``purge_evidence(older_than_months=None, dry_run=False, now=None, …) -> PurgeReport``
- ``write_customer_data(user, out, …) -> ExportSummary`` (streams into a binary file object)
- ``export_customer_data(user, …) -> bytes``
"""

from __future__ import annotations

import calendar
import io
import json
import logging
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import (
    ApiToken,
    BuyerLink,
    Case,
    CaseState,
    LookupEvent,
    Notification,
    Rating,
    Upload,
    UploadState,
    User,
    utcnow,
)
from . import audit
from .audit import jsonable

log = logging.getLogger(__name__)

CLOSED_CASE_STATES = (
    CaseState.RESOLVED,
    CaseState.REJECTED,
    CaseState.WITHDRAWN,
    CaseState.MERGED,
)
PURGE_BATCH = 200
EXPORT_FORMAT = 1
_SHANGHAI = ZoneInfo("Asia/Shanghai")
_CHUNK = 1024 * 1024


# --------------------------------------------------------------------------- retention


def retention_months() -> int:
    """``EVIDENCE_RETENTION_MONTHS`` from the app's settings (default in ``portal/config.py``)."""
    return int(current_app.config["EVIDENCE_RETENTION_MONTHS"])


def retention_cutoff(now: datetime, months: int) -> datetime:
    """``now`` minus ``months`` calendar months (the day clamped to the month's length)."""
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now")
    if months < 0:
        raise ValueError("months must not be negative")
    index = now.year * 12 + (now.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    day = min(now.day, calendar.monthrange(year, month)[1])
    return now.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class PurgedUpload:
    """One upload the purge handled (or, in a dry run, would handle)."""

    upload_id: int
    case_reference: str
    keys: tuple[str, ...]  # the stored files: original, then preview and thumbnail if any
    present: int  # how many of them were there
    bytes: int  # their size together


@dataclass
class PurgeReport:
    """What :func:`purge_evidence` did (or would do, with ``dry_run``)."""

    months: int
    cutoff: datetime
    dry_run: bool
    uploads: list[PurgedUpload] = field(default_factory=list)

    @property
    def cases(self) -> int:
        """How many cases the purged uploads belong to."""
        return len({u.case_reference for u in self.uploads})

    @property
    def files(self) -> int:
        """Files deleted (or that would be)."""
        return sum(u.present for u in self.uploads)

    @property
    def missing(self) -> int:
        """Files the rows named that were already gone."""
        return sum(len(u.keys) - u.present for u in self.uploads)

    @property
    def bytes(self) -> int:
        """Bytes freed (or that would be)."""
        return sum(u.bytes for u in self.uploads)

    def summary(self) -> str:
        """One line for people: what was (or would be) purged."""
        verb = "would purge" if self.dry_run else "purged"
        return (
            f"{verb} {len(self.uploads)} upload(s) of {self.cases} case(s) closed before "
            f"{self.cutoff:%Y-%m-%d} ({self.months} months): {self.files} file(s), "
            f"{self.bytes} bytes; {self.missing} file(s) already missing"
        )


def _closed_before(case: Case | None, cutoff: datetime, hops: int = 10) -> bool:
    # A merged case's evidence belongs with the case it was merged into: wait for that one too.
    while case is not None and hops > 0:
        closed_at = case.resolved_at or case.updated_at
        if case.state not in CLOSED_CASE_STATES or closed_at is None or closed_at >= cutoff:
            return False
        if case.state != CaseState.MERGED or case.merged_into_id is None:
            return True
        case = db.session.get(Case, case.merged_into_id)
        hops -= 1
    return False


def _candidates(cutoff: datetime, after_id: int, limit: int) -> list[Upload]:
    closed_at = func.coalesce(Case.resolved_at, Case.updated_at)
    return db.session.scalars(
        select(Upload)
        .join(Case, Upload.case_id == Case.id)
        .where(
            Upload.id > after_id,
            Case.state.in_([str(s) for s in CLOSED_CASE_STATES]),
            closed_at < cutoff,
            Upload.state != UploadState.PURGED,
        )
        .options(joinedload(Upload.case))
        .order_by(Upload.id)
        .limit(limit)
    ).all()


def _size(store, key: str) -> int | None:
    # One call to storage per file (a HEAD request on the shared bucket): size, or absent.
    try:
        return store.size(key)
    except FileNotFoundError:
        return None


def _keys(upload: Upload) -> tuple[str, ...]:
    return tuple(k for k in (upload.storage_key, upload.preview_key, upload.thumbnail_key) if k)


def purge_evidence(
    older_than_months: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    *,
    actor="retention",
    batch_size: int = PURGE_BATCH,
) -> PurgeReport:
    """Delete the evidence files of cases closed more than ``older_than_months`` months before
    ``now`` (default: the ``EVIDENCE_RETENTION_MONTHS`` setting, and the current time).

    Marks each upload purged and records one ``upload.purged`` audit row for it; commits once
    per batch. With ``dry_run`` nothing is deleted, changed or recorded: the report says what
    would be. Running it again purges nothing twice.
    """
    from .evidence import storage

    months = retention_months() if older_than_months is None else int(older_than_months)
    now = now or utcnow()
    cutoff = retention_cutoff(now, months)
    report = PurgeReport(months=months, cutoff=cutoff, dry_run=dry_run)
    store = storage()
    stamp = now.astimezone(UTC).isoformat()
    last_id = 0
    while True:
        batch = _candidates(cutoff, last_id, batch_size)
        if not batch:
            break
        last_id = batch[-1].id
        due = [u for u in batch if _closed_before(u.case, cutoff)]
        handled: list[PurgedUpload] = []
        changes = []
        for upload in due:
            keys = _keys(upload)
            sizes = [size for size in (_size(store, k) for k in keys) if size is not None]
            handled.append(
                PurgedUpload(
                    upload_id=upload.id,
                    case_reference=upload.case.reference,
                    keys=keys,
                    present=len(sizes),
                    bytes=sum(sizes),
                )
            )
            if dry_run:
                continue
            before = {
                "storage_key": upload.storage_key,
                "preview_key": upload.preview_key,
                "thumbnail_key": upload.thumbnail_key,
                "sha256": upload.sha256,
                "size": upload.size_bytes,
                "state": upload.state,
            }
            upload.preview_key = upload.thumbnail_key = upload.perceptual_hash = None
            upload.extracted = None
            # Final: neither the extraction job nor its sweeper picks it up again.
            upload.state, upload.purged_at = UploadState.PURGED, now
            after = {
                "case": upload.case.reference,
                "purged_at": stamp,
                "retention_months": months,
                "files_deleted": len(sizes),
            }
            changes.append(("upload.purged", "upload", upload.id, before, after))
        report.uploads.extend(handled)
        if dry_run or not changes:
            continue
        audit.record_many(changes, actor=actor)
        db.session.flush()
        try:
            for item in handled:
                for key in item.keys:
                    store.delete(key)
        except BaseException:
            db.session.rollback()
            raise
        db.session.commit()
    if not dry_run:
        log.info("%s", report.summary())
    return report


# --------------------------------------------------------------------------- export


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def _zip_name(name: str) -> str:
    cleaned = _UNSAFE_NAME.sub("_", name or "").strip(" .") or "file"
    return cleaned[:120]


@dataclass(frozen=True)
class ExportSummary:
    """What went into a customer's data export."""

    cases: int
    files: int
    missing_files: int
    bytes_of_files: int


def _account(user: User) -> dict:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "locale": user.locale,
        "active": user.active,
        "optional_mail": user.optional_mail,
        "created_at": user.created_at,
        "last_login_at": user.last_login_at,
    }


def _extracted_values(upload: Upload) -> dict[str, str]:
    fields = (upload.extracted or {}).get("fields") or []
    return {f.get("name"): f.get("value") for f in fields if isinstance(f, dict) and f.get("name")}


def _case(case: Case, files: dict[int, str | None]) -> dict:
    return {
        "reference": case.reference,
        "state": case.state,
        "channel": case.channel,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "resolved_at": case.resolved_at,
        "contact_email": case.contact_email,
        "contact_phone": case.contact_phone,
        "contact_preference": case.contact_preference,
        "description": case.description,
        "claimed": {
            "code": case.claimed_code,
            "number": case.claimed_number,
            "issue_date": case.claimed_issue_date,
            "amount": case.claimed_amount,
            "total": case.claimed_total,
            "check_code": case.claimed_check_code,
            "buyer_tax_id": case.claimed_buyer_tax_id,
        },
        "confirmed_fields": case.confirmed_fields,
        "confirmed_at": case.confirmed_at,
        "invoice_key": case.invoice.key if case.invoice is not None else None,
        "merged_into": case.merged_into.reference if case.merged_into is not None else None,
        # The timeline the customer sees, messages included (kind "message"); internal staff
        # notes and the names of staff are left out.
        "events": [
            {
                "kind": e.kind,
                "created_at": e.created_at,
                "from_staff": e.from_staff,
                "body": e.body,
            }
            for e in case.events
            if e.public
        ],
        "uploads": [
            {
                "id": u.id,
                "original_name": u.original_name,
                "media_type": u.media_type,
                "size_bytes": u.size_bytes,
                "sha256": u.sha256,
                "state": u.state,
                "pages": u.pages,
                "created_at": u.created_at,
                "processed_at": u.processed_at,
                "fields_read": _extracted_values(u),
                "purged_at": u.purged_at,
                "file": files.get(u.id),
            }
            for u in case.uploads
        ],
    }


def _rows(model, *criteria, order=None) -> Iterable:
    query = select(model).where(*criteria).order_by(order if order is not None else model.id)
    return db.session.scalars(query).all()


_README = """\
您的数据 / Your data
=====================

data.json  您的账户、报告（含时间线与留言）、上传文件的信息、购买方关联、评价、查询记录和通知。
           Your account, your reports (timeline and messages), evidence details, buyer links,
           ratings, lookups and notifications. Times are ISO 8601 in UTC; amounts in yuan.
evidence/  您上传的原始文件，按报告编号分目录（已按保留期限删除的文件不在其中）。
           The original files of your evidence, one folder per report (files deleted under
           the retention policy are not included).
"""


def write_customer_data(
    user: User, out: BinaryIO, *, now: datetime | None = None, actor=None
) -> ExportSummary:
    """Write ``user``'s data as a ZIP into ``out`` (a seekable binary file), streaming the
    evidence files; records a ``user.data_exported`` audit row and commits.

    ``actor`` is who asked (default: the user themself; ``"cli"`` for an operator).
    """
    from .evidence import storage

    now = now or utcnow()
    store = storage()
    stamp = now.astimezone(_SHANGHAI).timetuple()[:6]
    own_cases = _rows(Case, Case.customer_id == user.id)  # the cases this account sees
    files: dict[int, str | None] = {}
    missing = total_bytes = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for case in own_cases:
            for upload in case.uploads:
                source = None
                if not upload.is_purged:
                    try:
                        source = store.open(upload.storage_key)
                    except FileNotFoundError:
                        missing += 1
                        log.warning("evidence file of upload %s is missing", upload.id)
                if source is None:
                    files[upload.id] = None
                    continue
                name = f"evidence/{case.reference}/{upload.id}-{_zip_name(upload.original_name)}"
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_STORED  # photos and PDFs are compressed already
                with source, archive.open(info, "w") as target:
                    while chunk := source.read(_CHUNK):
                        target.write(chunk)
                        total_bytes += len(chunk)
                files[upload.id] = name
        ratings = _rows(Rating, Rating.case_id.in_([c.id for c in own_cases]))
        references = {c.id: c.reference for c in own_cases}
        data = {
            "format": EXPORT_FORMAT,
            "exported_at": now,
            "account": _account(user),
            "cases": [_case(c, files) for c in own_cases],
            "buyer_links": [
                {
                    "buyer_tax_id": link.buyer_tax_id,
                    "buyer_name": link.buyer_name,
                    "state": link.state,
                    "invited_email": link.invited_email,
                    "note": link.note,
                    "created_at": link.created_at,
                    "decided_at": link.decided_at,
                }
                for link in _rows(
                    BuyerLink,
                    # Invitations by address only once the holder confirmed the address.
                    or_(
                        BuyerLink.user_id == user.id,
                        func.lower(BuyerLink.invited_email) == user.email.lower(),
                    )
                    if user.email_verified_at is not None
                    else BuyerLink.user_id == user.id,
                )
            ],
            "ratings": [
                {
                    "case": references[r.case_id],
                    "score": r.score,
                    "comment": r.comment,
                    "created_at": r.created_at,
                }
                for r in ratings
            ],
            "lookups": [
                {
                    "invoice_key": e.invoice_key,
                    "finding": e.finding,
                    "channel": e.channel,
                    "created_at": e.created_at,
                }
                for e in _rows(LookupEvent, LookupEvent.user_id == user.id)
            ],
            "notifications": [
                {
                    "kind": n.kind,
                    "recipient": n.recipient,
                    "state": n.state,
                    "created_at": n.created_at,
                    "sent_at": n.sent_at,
                }
                for n in _rows(Notification, Notification.user_id == user.id)
            ],
            "api_tokens": [
                {
                    "name": t.name,
                    "created_at": t.created_at,
                    "last_used_at": t.last_used_at,
                    "revoked_at": t.revoked_at,
                }
                for t in _rows(ApiToken, ApiToken.user_id == user.id)
            ],
        }
        text = json.dumps(jsonable(data), ensure_ascii=False, indent=2, sort_keys=False)
        for name, content in (("data.json", text), ("README.txt", _README)):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content.encode())
    summary = ExportSummary(
        cases=len(own_cases),
        files=sum(1 for v in files.values() if v),
        missing_files=missing,
        bytes_of_files=total_bytes,
    )
    audit.record(
        "user.data_exported",
        "user",
        user.id,
        after={"cases": summary.cases, "files": summary.files, "bytes": summary.bytes_of_files},
        actor=actor if actor is not None else user,
    )
    db.session.commit()
    return summary


def export_customer_data(user: User, *, now: datetime | None = None, actor=None) -> bytes:
    """``user``'s data as ZIP bytes (see :func:`write_customer_data`, which streams into a
    file and suits large exports better). Records an audit row and commits."""
    buffer = io.BytesIO()
    write_customer_data(user, buffer, now=now, actor=actor)
    return buffer.getvalue()
