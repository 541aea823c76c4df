"""The simulated registry's records: stdlib ``sqlite3``, in a file (kept across restarts) or in
memory. One lock guards the connection; the server is threaded."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from portal.domain.fields import WIRE_FIELDS


class SimulatorStopped(RuntimeError):
    """The simulator's storage was closed while a request was still running."""


@dataclass(frozen=True)
class Registration:
    """What happened to one invoice written to storage."""

    status: int  # 201 created, 200 same fields, 409 different fields
    record: dict[str, str]  # the record now stored under the key
    differences: tuple[str, ...] = ()


class RecordStore:
    """The registered invoices, in registration order, and how many writes were duplicates or
    conflicts; safe to share between threads.

    Records live in SQLite (a file when ``storage_path`` is given, else memory); the duplicate
    and conflict counts live in memory and start at zero for every instance.
    """

    def __init__(self, storage_path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            storage_path or ":memory:", check_same_thread=False, isolation_level=None
        )
        if storage_path:
            # WAL with synchronous=NORMAL: a commit per registration stays cheap under load.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS invoices ("
            " seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, registry_id TEXT NOT NULL,"
            " registered_at TEXT NOT NULL, fields TEXT NOT NULL)"
        )
        (last_seq,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM invoices").fetchone()
        self._next_seq = last_seq + 1
        self.duplicates = 0
        self.conflicts = 0

    def _storage(self) -> sqlite3.Connection:
        if self._db is None:
            raise SimulatorStopped("the simulator has been stopped")
        return self._db

    def register(self, entries: list[tuple[str, dict[str, str]]]) -> list[Registration]:
        """Store each ``(key, canonical_fields)`` in order, in one transaction.

        An unknown key is created; a known key with equal fields is a duplicate (200); a known
        key with other fields is a conflict (409) and the stored record is left unchanged.
        """
        results = []
        with self._lock:
            db = self._storage()
            db.execute("BEGIN")
            try:
                for key, invoice in entries:
                    results.append(self._register_one(db, key, invoice))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return results

    def _register_one(
        self, db: sqlite3.Connection, key: str, invoice: dict[str, str]
    ) -> Registration:
        row = db.execute(
            "SELECT key, registry_id, registered_at, fields FROM invoices WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            seq = self._next_seq
            registry_id = f"BJR{seq:012d}"
            registered_at = datetime.now(UTC).isoformat(timespec="microseconds")
            registered_at = registered_at.replace("+00:00", "Z")
            db.execute(
                "INSERT INTO invoices (seq, key, registry_id, registered_at, fields)"
                " VALUES (?, ?, ?, ?, ?)",
                (seq, key, registry_id, registered_at, json.dumps(invoice)),
            )
            self._next_seq += 1
            return Registration(201, _record(key, registry_id, registered_at, invoice))
        stored = _record(*row[:3], json.loads(row[3]))
        differences = tuple(name for name in WIRE_FIELDS if stored[name] != invoice[name])
        if differences:
            self.conflicts += 1
            return Registration(409, stored, differences)
        self.duplicates += 1
        return Registration(200, stored)

    def find(self, key: str) -> dict[str, str] | None:
        """Return the record registered under ``key``, or None."""
        with self._lock:
            row = (
                self._storage()
                .execute(
                    "SELECT key, registry_id, registered_at, fields FROM invoices WHERE key = ?",
                    (key,),
                )
                .fetchone()
            )
        return None if row is None else _record(*row[:3], json.loads(row[3]))

    def page(self, after_seq: int, limit: int) -> tuple[list[dict[str, str]], int | None]:
        """Return up to ``limit`` records registered after ``after_seq``, and the last seq
        returned if more records follow (else None)."""
        with self._lock:
            rows = (
                self._storage()
                .execute(
                    "SELECT seq, key, registry_id, registered_at, fields FROM invoices"
                    " WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit + 1),
                )
                .fetchall()
            )
        more = len(rows) > limit
        rows = rows[:limit]
        records = [_record(*row[1:4], json.loads(row[4])) for row in rows]
        return records, (rows[-1][0] if more else None)

    def counts(self) -> tuple[int, int, int]:
        """``(records, duplicates, conflicts)``, read together."""
        with self._lock:
            (records,) = self._storage().execute("SELECT COUNT(*) FROM invoices").fetchone()
            return records, self.duplicates, self.conflicts

    def reset(self) -> None:
        """Forget every record and count."""
        with self._lock:
            self._storage().execute("DELETE FROM invoices")
            self._next_seq = 1
            self.duplicates = 0
            self.conflicts = 0

    def close(self) -> None:
        """Close the storage; later calls raise SimulatorStopped."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _record(
    key: str, registry_id: str, registered_at: str, invoice: dict[str, str]
) -> dict[str, str]:
    return {"key": key, **invoice, "registry_id": registry_id, "registered_at": registered_at}
