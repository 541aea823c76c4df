"""Billing intake: invoices the company issued enter the ledger, each with its outbox row.

One validation (the domain rules) serves the JSON API and the CSV import. Recording is
idempotent on the invoice key: the same invoice again changes nothing; the same key with other
fields is a conflict for people to resolve, never a silent overwrite.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..domain import (
    InvoiceKind,
    InvoiceRuleError,
    check_issue_date_range,
    check_totals,
    parse_check_code,
    parse_identity,
    parse_issue_date,
    parse_money,
    parse_taxpayer_id,
    shanghai_date,
)
from ..domain.fields import WIRE_FIELDS
from ..domain.messages import field_label
from ..extensions import db
from ..models import Invoice, InvoiceSource, utcnow
from . import audit, outbox

# The import's header is the registry protocol's fields, in its order.
CSV_HEADER = WIRE_FIELDS
_CHECK_CODE_KINDS = {
    InvoiceKind.ORDINARY,
    InvoiceKind.E_ORDINARY,
    InvoiceKind.TOLL,
    InvoiceKind.ROLL,
}
_KIND_BY_TYPE_CODE = {k.type_code: k for k in InvoiceKind if k.type_code}


@dataclass(frozen=True)
class IssuedInvoice:
    """An issued invoice that passed every rule, with canonical values."""

    key: str
    code: str
    number: str
    kind: str
    issue_date: date
    amount: Decimal
    tax: Decimal
    total: Decimal
    buyer_tax_id: str
    buyer_name: str
    seller_tax_id: str
    check_code: str

    def as_record(self) -> dict:
        """The fields as the ledger stores them."""
        return {name: getattr(self, name) for name in ("key", *CSV_HEADER)}


class IntakeOutcome(StrEnum):
    CREATED = "created"  # 201
    UNCHANGED = "unchanged"  # 200: the same invoice again
    CONFLICT = "conflict"  # 409: the key is taken by different fields


@dataclass(frozen=True)
class IntakeResult:
    outcome: IntakeOutcome
    invoice: Invoice
    differences: tuple[str, ...] = ()


class IntakeErrors(Exception):
    """The invoice broke rules; ``errors`` maps each field to (code, message)."""

    def __init__(self, errors: dict[str, tuple[str, str]]):
        super().__init__(", ".join(errors))
        self.errors = errors


def _text(raw: Mapping, name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise InvoiceRuleError("not_text", field=name)
    return str(value).strip()


def validate_issued(
    raw: Mapping, *, today: date | None = None, locale: str = "zh_CN"
) -> IssuedInvoice:
    """Check an issued invoice against the rules; raise IntakeErrors naming every bad field."""
    today = today or shanghai_date(utcnow())
    errors: dict[str, tuple[str, str]] = {}

    def attempt(name: str, parse: Callable[[], object]):
        try:
            return parse()
        except InvoiceRuleError as error:
            # The rule names its field ("code", "tax_id"); report it under the input's name.
            where = error.field if error.field in CSV_HEADER else name
            errors.setdefault(where, (error.code, error.message(locale)))
            return None

    def refuse(name: str, code: str, zh: str, en: str) -> None:
        errors.setdefault(name, (code, en if locale == "en" else zh))

    kind_text = attempt("kind", lambda: _text(raw, "kind"))
    type_code = kind_text if kind_text in _KIND_BY_TYPE_CODE else None
    identity = attempt(
        "number",
        lambda: parse_identity(_text(raw, "code"), _text(raw, "number"), type_code=type_code),
    )
    kind = None
    if identity is not None:
        kind = identity.kind
        if not identity.is_beijing:
            refuse(
                "code" if identity.code else "number",
                "not_beijing",
                f"这是{identity.region.name('zh_CN')}的发票，不能登记到北京的系统。",
                f"This invoice was issued in {identity.region.name('en')}; the Beijing "
                "registry cannot hold it.",
            )
        if kind_text:
            claimed = _KIND_BY_TYPE_CODE.get(kind_text) or (
                InvoiceKind(kind_text) if kind_text in InvoiceKind.__members__.values() else None
            )
            if claimed is None:
                refuse(
                    "kind",
                    "kind_unknown",
                    f"未知的发票种类“{kind_text}”。",
                    f"Unknown invoice kind “{kind_text}”.",
                )
            elif identity.code and claimed != kind:
                refuse(
                    "kind",
                    "kind_mismatch",
                    f"发票代码表明这是{kind.label('zh_CN')}，与填写的种类不符。",
                    f"The invoice code says {kind.label('en')}, not the kind given.",
                )
            elif not identity.code:
                kind = (
                    claimed
                    if claimed in (InvoiceKind.DIGITAL_SPECIAL, InvoiceKind.DIGITAL_ORDINARY)
                    else kind
                )
    issue_date = attempt(
        "issue_date",
        lambda: check_issue_date_range(parse_issue_date(_text(raw, "issue_date")), today),
    )
    amount = attempt("amount", lambda: parse_money(_text(raw, "amount"), field="amount"))
    tax = attempt("tax", lambda: parse_money(_text(raw, "tax"), field="tax"))
    total = attempt("total", lambda: parse_money(_text(raw, "total"), field="total"))
    if None not in (amount, tax, total):
        attempt("total", lambda: check_totals(amount, tax, total))
    buyer = attempt("buyer_tax_id", lambda: parse_taxpayer_id(_text(raw, "buyer_tax_id")))
    seller = attempt("seller_tax_id", lambda: parse_taxpayer_id(_text(raw, "seller_tax_id")))
    buyer_name = _text(raw, "buyer_name") if isinstance(raw.get("buyer_name"), str) else ""
    if not buyer_name:
        refuse("buyer_name", "required", "请填写购买方名称。", "The buyer name is required.")
    elif len(buyer_name) > 200:
        refuse(
            "buyer_name",
            "too_long",
            "购买方名称不能超过 200 个字符。",
            "The buyer name may have at most 200 characters.",
        )
    check_text = attempt("check_code", lambda: _text(raw, "check_code"))
    check_code = ""
    if check_text and kind is not None:
        if kind in _CHECK_CODE_KINDS:
            check_code = attempt("check_code", lambda: parse_check_code(check_text)) or ""
        else:
            refuse(
                "check_code",
                "check_code_unexpected",
                "这种发票没有校验码。",
                "This kind of invoice has no check code.",
            )
    if errors:
        raise IntakeErrors(errors)
    return IssuedInvoice(
        key=identity.key,
        code=identity.code,
        number=identity.number,
        kind=kind.value,
        issue_date=issue_date,
        amount=amount,
        tax=tax,
        total=total,
        buyer_tax_id=buyer.value,
        buyer_name=buyer_name,
        seller_tax_id=seller.value,
        check_code=check_code,
    )


def _differences(existing: Invoice, issued: IssuedInvoice) -> tuple[str, ...]:
    return tuple(name for name in WIRE_FIELDS if getattr(existing, name) != getattr(issued, name))


def record_issued(
    issued: IssuedInvoice, source: str = InvoiceSource.API, actor=None, commit: bool = True
) -> IntakeResult:
    """Put an issued invoice in the ledger with its outbox row, idempotently by key."""
    existing = db.session.scalar(select(Invoice).where(Invoice.key == issued.key))
    if existing is not None:
        return _compare(existing, issued)
    invoice = Invoice(**issued.as_record(), source=source)
    db.session.add(invoice)
    try:
        db.session.flush()
    except IntegrityError:
        # Another request recorded the same key a moment ago: answer as if we had been second.
        db.session.rollback()
        return _compare(db.session.scalar(select(Invoice).where(Invoice.key == issued.key)), issued)
    audit.record("invoice.issued", "invoice", invoice.key, after=issued.as_record(), actor=actor)
    outbox.queue_delivery(invoice, reason="issued", actor=actor)
    if commit:
        db.session.commit()
    return IntakeResult(IntakeOutcome.CREATED, invoice)


def invoice_by_key(key: str) -> Invoice | None:
    """The ledger invoice with this canonical key, or None."""
    return db.session.scalar(select(Invoice).where(Invoice.key == key))


def _compare(existing: Invoice, issued: IssuedInvoice) -> IntakeResult:
    differences = _differences(existing, issued)
    if differences:
        return IntakeResult(IntakeOutcome.CONFLICT, existing, differences)
    return IntakeResult(IntakeOutcome.UNCHANGED, existing)


@dataclass
class ImportReport:
    """What a CSV import did; ``problems`` are (line number, field, message)."""

    rows: int = 0
    created: int = 0
    unchanged: int = 0
    conflicts: int = 0
    invalid: int = 0
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    encoding: str = "utf-8"


class ImportRefused(Exception):
    """The file as a whole cannot be imported (wrong header, unreadable encoding, too big)."""


def decode_csv(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and its encoding: UTF-8 (with or without BOM), else GB18030."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        raise ImportRefused("the file is neither UTF-8 nor GB18030 text") from None


def import_csv(
    data: bytes,
    *,
    actor=None,
    batch_size: int = 500,
    max_rows: int = 1_000_000,
    progress: Callable[[int], None] | None = None,
    locale: str = "zh_CN",
) -> ImportReport:
    """Import issued invoices from CSV bytes (header ``CSV_HEADER``); good rows are committed in
    batches, bad rows reported with their line numbers. Importing the same file again changes
    nothing."""
    text, encoding = decode_csv(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
        raise ImportRefused("the header must be exactly: " + ",".join(CSV_HEADER))
    report = ImportReport(encoding=encoding)
    today = shanghai_date(utcnow())
    batch: list[tuple[int, IssuedInvoice]] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        report.rows += 1
        if report.rows > max_rows:
            report.problems.append((line, "", f"more than {max_rows} rows; the rest was not read"))
            break
        if len(row) != len(CSV_HEADER):
            report.problems.append(
                (line, "", f"expected {len(CSV_HEADER)} columns, found {len(row)}")
            )
            report.invalid += 1
            continue
        try:
            issued = validate_issued(
                dict(zip(CSV_HEADER, row, strict=True)), today=today, locale=locale
            )
        except IntakeErrors as error:
            for name, (_, message) in error.errors.items():
                report.problems.append((line, name, message))
            report.invalid += 1
            continue
        batch.append((line, issued))
        if len(batch) >= batch_size:
            _import_batch(batch, report, actor, locale)
            batch = []
            if progress:
                progress(report.rows)
    if batch:
        _import_batch(batch, report, actor, locale)
    if progress:
        progress(report.rows)
    return report


def _import_batch(batch, report: ImportReport, actor, locale: str) -> None:
    keys = {issued.key for _, issued in batch}
    existing = {
        inv.key: inv for inv in db.session.scalars(select(Invoice).where(Invoice.key.in_(keys)))
    }
    fresh: list[tuple[Invoice, IssuedInvoice]] = []
    for line, issued in batch:
        known = existing.get(issued.key)
        if known is None:
            invoice = Invoice(**issued.as_record(), source=InvoiceSource.CSV)
            existing[issued.key] = invoice
            fresh.append((invoice, issued))
            continue
        differences = _differences(known, issued)
        if differences:
            report.conflicts += 1
            labels = "、".join(field_label(d, locale) for d in differences)
            if locale == "en":
                message = f"{issued.key} already exists with a different {labels}"
            else:
                message = f"{issued.key} 已存在，但{labels}不同"
            report.problems.append((line, "key", message))
        else:
            report.unchanged += 1
    if fresh:
        db.session.add_all(inv for inv, _ in fresh)
        db.session.flush()
        audit.record_many(
            [
                ("invoice.issued", "invoice", inv.key, None, issued.as_record())
                for inv, issued in fresh
            ],
            actor=actor,
        )
        outbox.queue_deliveries([inv for inv, _ in fresh], reason="issued", actor=actor)
    db.session.commit()
    report.created += len(fresh)


def iter_rows(report: ImportReport) -> Iterable[str]:
    """The problems as lines for a terminal."""
    for line, name, message in report.problems:
        yield f"line {line}: {name + ': ' if name else ''}{message}"
