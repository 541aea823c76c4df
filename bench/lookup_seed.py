"""A million-invoice ledger in PostgreSQL, seeded with COPY, for the lookup benchmark.

    .venv/bin/python bench/lookup_seed.py [--invoices 1000000] [--database portal_bench_lookup]

(Re)creates the database (dropping one of that name first), applies the migrations with
``flask --app wsgi db upgrade``, then COPYs invoice ``n`` = 1..N with one ``Submission`` each
(and one ``SubmissionAttempt`` per delivered one), and ANALYZEs. ``bench/lookup.py`` calls the
same functions and drops the database at the end; run this file alone to keep one around
(``bench/lookup.py --reuse-db``).

Every invoice is a Beijing e-普票 (code ``011002600111``, kind ``e_ordinary``) whose fields are
a function of ``n`` alone, so a load generator can look up any of them without reading the
database (``bench/lookup_wrk.lua`` computes the same formulas):

* number ``%08d`` of n, issue date 2025-01-01 + (n mod 365) days;
* check code: 14 digits of (n·104729 mod 10^14), then the last 6 = (n·7919 mod 10^6);
* every 20th invoice (n mod 20 = 0) is still pending (submission ``queued``, never attempted);
  the others are ``registered`` (submission ``succeeded`` after one attempt).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import compile_catalogs, create_database  # noqa: E402

DEFAULT_DB = "portal_bench_lookup"
# What production refuses to start without, besides the database, Redis and the secret key.
PRODUCTION_EXTRAS = {
    "PUBLIC_URL": "http://127.0.0.1",
    "TOTP_ENCRYPTION_KEY": "YmVuY2gtb25seS10b3RwLWtleS0zMi1ieXRlcy1vayE=",
}
CODE = "011002600111"
KIND = "e_ordinary"
FIRST_ISSUE_DATE = date(2025, 1, 1)
PENDING_EVERY = 20
CHUNK = 50_000
TABLES = ("invoices", "submissions", "submission_attempts")
CREATED_AT = "2025-01-01 00:00:00+00"

INVOICE_COLUMNS = (
    "id, key, code, number, kind, issue_date, amount, tax, total, buyer_tax_id, buyer_name, "
    "seller_tax_id, check_code, source, registry_state, registry_id, registered_at, "
    "created_at, updated_at"
)
SUBMISSION_COLUMNS = (
    "id, invoice_id, state, reason, attempts, next_attempt_at, created_at, updated_at, finished_at"
)
ATTEMPT_COLUMNS = "id, submission_id, started_at, duration_ms, outcome, status_code"


def database_url(name: str = DEFAULT_DB) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def number(n: int) -> str:
    return f"{n:08d}"


def issue_date(n: int) -> date:
    return FIRST_ISSUE_DATE + timedelta(days=n % 365)


def check_code(n: int) -> str:
    return f"{(n * 104729) % 10**14:014d}{(n * 7919) % 1_000_000:06d}"


def is_pending(n: int) -> bool:
    return n % PENDING_EVERY == 0


def lookup_fields(n: int) -> dict[str, str]:
    """What a customer holding invoice ``n`` types into the lookup form."""
    return {
        "code": CODE,
        "number": number(n),
        "issue_date": issue_date(n).isoformat(),
        "check_code_last6": check_code(n)[-6:],
    }


def _taxpayer_ids(count: int, division: str) -> list[str]:
    """``count`` valid 18-character unified social credit codes (as billing would send)."""
    sys.path.insert(0, str(ROOT))
    from portal.domain.taxid import uscc_check_character

    ids = []
    for i in range(count):
        first17 = f"91{division}{i:09d}"
        ids.append(first17 + uscc_check_character(first17))
    return ids


def recreate_database(name: str = DEFAULT_DB) -> str:
    """Drop ``name`` if it exists, create it empty and apply the migrations; returns its URL."""
    compile_catalogs()  # the migrations run in production settings
    url = create_database(name)
    env = {
        **os.environ,
        "PORTAL_ENV": "production",
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-migrations-only",
        "REDIS_URL": "redis://127.0.0.1:6379/10",
        **PRODUCTION_EXTRAS,
    }
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return url


def _invoice_rows(start: int, stop: int, buyers: list[str], seller: str) -> str:
    out = io.StringIO()
    write = out.write
    n_buyers = len(buyers)
    for n in range(start, stop):
        num = f"{n:08d}"
        amount = 1000 + (n * 7907) % 999_000  # cents
        tax = (amount * 13 + 50) // 100
        total = amount + tax
        if n % PENDING_EVERY:
            state, registry_id, registered_at = (
                "registered",
                f"BJ{n:012d}",
                f"{issue_date(n).isoformat()} 09:30:00+00",
            )
        else:
            state, registry_id, registered_at = "pending", "\\N", "\\N"
        write(
            f"{n}\t{CODE}-{num}\t{CODE}\t{num}\t{KIND}\t{issue_date(n).isoformat()}\t"
            f"{amount // 100}.{amount % 100:02d}\t{tax // 100}.{tax % 100:02d}\t"
            f"{total // 100}.{total % 100:02d}\t{buyers[n % n_buyers]}\t"
            f"北京示例商贸有限公司{n % n_buyers:04d}\t{seller}\t{check_code(n)}\tcsv\t{state}\t"
            f"{registry_id}\t{registered_at}\t{CREATED_AT}\t{CREATED_AT}\n"
        )
    return out.getvalue()


def _submission_rows(start: int, stop: int) -> str:
    out = io.StringIO()
    write = out.write
    for n in range(start, stop):
        if n % PENDING_EVERY:
            done = f"{issue_date(n).isoformat()} 09:30:00+00"
            write(f"{n}\t{n}\tsucceeded\tissued\t1\t\\N\t{CREATED_AT}\t{done}\t{done}\n")
        else:
            write(f"{n}\t{n}\tqueued\tissued\t0\t{CREATED_AT}\t{CREATED_AT}\t{CREATED_AT}\t\\N\n")
    return out.getvalue()


def _attempt_rows(start: int, stop: int) -> str:
    out = io.StringIO()
    write = out.write
    for n in range(start, stop):
        if n % PENDING_EVERY:
            write(f"{n}\t{n}\t{issue_date(n).isoformat()} 09:29:59+00\t85\tsuccess\t201\n")
    return out.getvalue()


def _drop_secondary_indexes_and_foreign_keys(cur: psycopg.Cursor, tables) -> list[sql.Composed]:
    """Drop the indexes that back no constraint and the foreign keys of ``tables``; return the
    statements that recreate them, indexes first."""
    cur.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        (list(tables),),
    )
    indexes = cur.fetchall()
    cur.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[])",
        (list(tables),),
    )
    foreign_keys = cur.fetchall()
    for table, name, _ in foreign_keys:
        cur.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
        )
    for name, _ in indexes:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    rebuild = [sql.SQL(definition) for _, definition in indexes]
    rebuild += [
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(t), sql.Identifier(n))
        + sql.SQL(definition)
        for t, n, definition in foreign_keys
    ]
    return rebuild


def _copy(cur: psycopg.Cursor, table: str, columns: str, count: int, rows) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FREEZE)") as copy:
        for start in range(1, count + 1, CHUNK):
            copy.write(rows(start, min(count + 1, start + CHUNK)))


def seed(url: str, count: int) -> float:
    """COPY ``count`` invoices, their submissions and attempts into the empty schema at ``url``;
    ANALYZE; return the seconds it took."""
    started = time.perf_counter()
    buyers = _taxpayer_ids(997, "110108")
    seller = _taxpayer_ids(1, "110105")[0]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        # FREEZE needs the tables emptied in this transaction; it spares the first readers the
        # hint-bit writes and sets the visibility map (index-only scans straight away).
        cur.execute("TRUNCATE invoices, submissions, submission_attempts CASCADE")
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        # Secondary indexes and foreign keys are rebuilt once after the load (one sort, one
        # join), not maintained row by row: the same definitions, from the catalog.
        rebuild = _drop_secondary_indexes_and_foreign_keys(cur, TABLES)
        _copy(
            cur,
            "invoices",
            INVOICE_COLUMNS,
            count,
            lambda a, b: _invoice_rows(a, b, buyers, seller),
        )
        _copy(cur, "submissions", SUBMISSION_COLUMNS, count, _submission_rows)
        _copy(cur, "submission_attempts", ATTEMPT_COLUMNS, count, _attempt_rows)
        for statement in rebuild:
            cur.execute(statement)
        for table in ("invoices", "submissions", "submission_attempts"):
            cur.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({name}, 'id'), "
                    "(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                ).format(name=sql.Literal(table), table=sql.Identifier(table))
            )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--database", default=DEFAULT_DB, help="portal_bench_* (recreated)")
    args = parser.parse_args()
    started = time.perf_counter()
    url = recreate_database(args.database)
    migrated = time.perf_counter() - started
    seconds = seed(url, args.invoices)
    print(
        f"{args.database}: migrated in {migrated:.1f} s; {args.invoices:,} invoices + "
        f"submissions + attempts seeded (COPY, ANALYZE) in {seconds:.1f} s "
        f"({args.invoices / seconds:,.0f} invoices/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
