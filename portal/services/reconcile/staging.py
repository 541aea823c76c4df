"""Reading the registry listing into ``reconciliation_staging``, page by page.

COPY on PostgreSQL (``copy_line`` writes COPY's text format without a per-value function call
on the common path), executemany on SQLite (``staging_row``); each page is committed together
with the listing position, under the run's lease.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import func, insert, select

from ...domain.fields import WIRE_FIELDS
from ...extensions import db
from ...models import Invoice, utcnow
from ...models.reconciliation import ReconciliationRun, ReconciliationStaging, RunKind
from ..registry_link import client as registry_client
from .base import Progress, clear_staging, setting, this_run
from .lease import RunRef, hold

log = logging.getLogger(__name__)

_S = ReconciliationStaging.__table__
_I = Invoice.__table__
_STAGING_COLUMNS = ("run_id", "key", "registry_id", *WIRE_FIELDS)
_COPY_STAGING = f"COPY reconciliation_staging ({', '.join(_STAGING_COLUMNS)}) FROM STDIN"
_MONEY_TEXT = r"[0-9]{1,18}(?:\.[0-9]{1,2})?"  # what numeric(20, 2) holds, no sign, no exponent
_MONEY = re.compile(_MONEY_TEXT)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def read_listing(ref: RunRef, progress: Progress) -> None:
    """Stage the registry listing page by page from the run's stored position.

    Each page commits with the new position, on a connection of its own held for the whole
    listing (a thousand commits through the session would each check a connection out of the
    pool and ping it). The next page is fetched by a background thread while this one is
    written, so the registry's time and the database's overlap.
    """
    run = db.session.get(ReconciliationRun, ref.id)
    if run.listed_at is not None:
        return
    registry = registry_client()
    page_size = setting("RECONCILE_PAGE_SIZE")
    cursor, offset, done = run.cursor_current, run.offset_current, run.registry_rows
    expected = _expected_rows(run)
    db.session.commit()
    progress("listing", done, expected)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reconcile-listing")
    with db.engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            # A page and its position commit together or not at all, so a commit lost in a
            # database crash only means reading that page again: no need to wait for the WAL
            # flush of each of a thousand small transactions.
            connection.exec_driver_sql("SET synchronous_commit = off")
            connection.commit()
        try:
            pending = pool.submit(registry.list_invoices, cursor, page_size)
            while True:
                items, next_cursor = pending.result()
                if next_cursor is not None:
                    pending = pool.submit(registry.list_invoices, next_cursor, page_size)
                fresh = items[offset:]
                position: dict[str, Any]
                if next_cursor is None:
                    # No cursor after the last page: remember this page's, and how much of it
                    # was read.
                    position = {
                        "cursor_current": cursor,
                        "offset_current": len(items),
                        "cursor_end": cursor,
                        "offset_end": len(items),
                        "listed_at": utcnow(),
                    }
                else:
                    # Records to skip run on into the next page if this one was shorter.
                    offset = max(0, offset - len(items))
                    position = {"cursor_current": next_cursor, "offset_current": offset}
                hold(
                    ref,
                    connection,
                    pages=ReconciliationRun.pages + 1,
                    registry_rows=ReconciliationRun.registry_rows + len(fresh),
                    **position,
                )
                _stage(connection, ref.id, fresh)
                connection.commit()
                done += len(fresh)
                progress("listing", done, expected)
                if next_cursor is None:
                    return
                cursor = next_cursor
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            connection.rollback()
            if postgres:
                connection.exec_driver_sql("RESET synchronous_commit")
                connection.commit()


def check_staging(ref: RunRef) -> None:
    """Before resuming: are the staged rows still all there? If not, read the listing again.

    The staging table is unlogged on PostgreSQL, so a database crash empties it while the run
    row (logged) still says how far the listing got. Reading it again from the run's start is
    safe: findings are not recorded twice.
    """
    run = db.session.get(ReconciliationRun, ref.id)
    staged = db.session.scalar(select(func.count()).select_from(_S).where(this_run(ref)))
    if staged == run.registry_rows:
        db.session.commit()
        return
    log.warning(
        "reconciliation run #%s: %s staged rows of %s remain; reading the listing again",
        ref.id,
        staged,
        run.registry_rows,
    )
    hold(
        ref,
        cursor_current=ReconciliationRun.cursor_start,
        offset_current=ReconciliationRun.offset_start,
        cursor_end=None,
        offset_end=None,
        listed_at=None,
        pages=0,
        registry_rows=0,
    )
    clear_staging()
    db.session.commit()


def _expected_rows(run: ReconciliationRun) -> int | None:
    # For the progress bar only: a full listing is about as long as the ledger.
    if run.kind != RunKind.FULL:
        return None
    return db.session.scalar(select(func.count()).select_from(_I))


def _money(value: Any) -> Decimal | None:
    if isinstance(value, str) and _MONEY.fullmatch(value):
        return Decimal(value)
    return None


def _day(value: Any) -> date | None:
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    value = value if isinstance(value, str) else str(value)
    # PostgreSQL text cannot hold NUL; a registry that sends one differs from us anyway.
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def staging_row(run_id: int, record: dict) -> tuple:
    """A registry record as a staging row (in ``_STAGING_COLUMNS`` order), typed for SQL.

    Money and dates the registry wrote unreadably become NULL, which compares as different.
    """
    code, number = _text(record.get("code")), _text(record.get("number"))
    key = record.get("key")
    if not isinstance(key, str) or not key:
        key = f"{code}-{number}" if code else number
    registry_id = record.get("registry_id")
    return (
        run_id,
        _text(key),
        _text(registry_id) if registry_id is not None else None,
        code,
        number,
        _text(record.get("kind")),
        _day(record.get("issue_date")),
        _money(record.get("amount")),
        _money(record.get("tax")),
        _money(record.get("total")),
        _text(record.get("buyer_tax_id")),
        _text(record.get("buyer_name")),
        _text(record.get("seller_tax_id")),
        _text(record.get("check_code")),
    )


# COPY's text format: tab-separated, \N for NULL, backslash escapes.
_COPY_UNSAFE = re.compile(r"[\\\t\n\r\x00]")
_FIGURES = re.compile(
    rf"([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})\t{_MONEY_TEXT}\t{_MONEY_TEXT}\t{_MONEY_TEXT}"
)
_RECORD_FIELDS = itemgetter(*_STAGING_COLUMNS[1:])
_VALID_DAYS: dict[str, bool] = {}


def copy_line(run_id: int, record: dict) -> str:
    """A registry record as one line of COPY text (the columns of ``_STAGING_COLUMNS``).

    The common case (every field a string, all printable and without backslashes, money and
    date well formed) costs two joins and a short regular expression, since a million of these
    are made per full run; anything else goes through :func:`staging_row`'s checks and is
    escaped field by field.
    """
    try:
        values = _RECORD_FIELDS(record)
        joined = "".join(values)
    except (KeyError, TypeError):  # a field missing, null or not a string
        return _copy_line_checked(run_id, record)
    # isprintable() is False for tab, newline, CR and NUL (and some rarer characters, which
    # then merely take the slow path).
    if not joined.isprintable() or "\\" in joined or not values[0]:
        return _copy_line_checked(run_id, record)
    figures = _FIGURES.fullmatch("\t".join(values[5:9]))
    if figures is None or not _real_day(figures.group(1)):
        return _copy_line_checked(run_id, record)
    return f"{run_id}\t" + "\t".join(values)


def _real_day(text_: str) -> bool:
    known = _VALID_DAYS.get(text_)
    if known is None:
        known = _day(text_) is not None
        if len(_VALID_DAYS) < 10_000:  # invoices share few issue dates; the cache stays small
            _VALID_DAYS[text_] = known
    return known


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    text_ = str(value)
    if _COPY_UNSAFE.search(text_):
        text_ = (
            text_.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
            .replace("\x00", "\ufffd")
        )
    return text_


def _copy_line_checked(run_id: int, record: dict) -> str:
    return "\t".join(_copy_value(value) for value in staging_row(run_id, record))


def _stage(connection, run_id: int, records: list[dict]) -> None:
    """Bulk-insert registry records into staging, in ``connection``'s transaction.

    PostgreSQL (psycopg): one COPY of the page as text. Elsewhere (SQLite): executemany.
    """
    if not records:
        return
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        page = "\n".join([copy_line(run_id, record) for record in records]) + "\n"
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(_COPY_STAGING) as copy:
            copy.write(page.encode())
        return
    connection.execute(
        insert(_S),
        [dict(zip(_STAGING_COLUMNS, staging_row(run_id, r), strict=True)) for r in records],
    )
