"""One simulator's state: its records (``storage``), its faults (``faults``) and the request
statistics, behind one object the HTTP API, tests and benchmarks share."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .faults import FaultInjector, Faults
from .storage import RecordStore, Registration


class SimulatorState:
    """Storage, statistics and fault settings of one simulator; safe to share between threads.

    Records live in SQLite (a file when ``storage_path`` is given, else memory). Statistics and
    faults live in memory and start empty for every instance.
    """

    def __init__(self, storage_path: str | None = None, client_timeout_hint: float = 5.0) -> None:
        self.records = RecordStore(storage_path)
        self.injector = FaultInjector(client_timeout_hint)
        self._lock = threading.Lock()
        self._clear_statistics()

    def _clear_statistics(self) -> None:
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._batch_items: Counter[str] = Counter()
            self._connections: set[tuple[str, int]] = set()

    # Records --------------------------------------------------------------------------------

    def register(self, entries: list[tuple[str, dict[str, str]]]) -> list[Registration]:
        """Store each ``(key, canonical_fields)`` in order, in one transaction (see
        ``RecordStore.register``)."""
        return self.records.register(entries)

    def find(self, key: str) -> dict[str, str] | None:
        """Return the record registered under ``key``, or None."""
        return self.records.find(key)

    def page(self, after_seq: int, limit: int) -> tuple[list[dict[str, str]], int | None]:
        """Return up to ``limit`` records registered after ``after_seq``, and the last seq
        returned if more records follow (else None)."""
        return self.records.page(after_seq, limit)

    # Faults ---------------------------------------------------------------------------------

    @property
    def client_timeout_hint(self) -> float:
        """The read timeout clients are expected to use."""
        return self.injector.client_timeout_hint

    @property
    def faults(self) -> Faults:
        """The current fault settings."""
        return self.injector.faults

    def set_faults(self, changes: Mapping[str, Any]) -> Faults:
        """Merge ``changes`` into the fault settings and return them (FaultSettingError if bad)."""
        return self.injector.set_faults(changes)

    def chance(self, rate: float) -> bool:
        """Draw once: True with probability ``rate``."""
        return self.injector.chance(rate)

    def pick_error_status(self) -> int:
        """The status of an injected error: 500 or 503."""
        return self.injector.pick_error_status()

    def take_rate_token(self) -> int | None:
        """Admit one request under ``rate_limit``; return None, or the whole seconds to wait."""
        return self.injector.take_rate_token()

    def timeout_seconds(self) -> float:
        """How long an injected timeout hangs."""
        return self.injector.timeout_seconds()

    # Statistics -----------------------------------------------------------------------------

    def count(self, outcome: str, batch_items: Counter[str] | None = None) -> None:
        """Count one request by outcome (and, for a batch, its items by outcome)."""
        with self._lock:
            self._requests[outcome] += 1
            if batch_items:
                self._batch_items.update(batch_items)

    def note_connection(self, address: str | None, port: int | None) -> None:
        """Remember a client's (address, port): distinct pairs are distinct TCP connections."""
        if address is not None and port is not None:
            with self._lock:
                self._connections.add((address, port))

    def stats(self) -> dict[str, Any]:
        """Requests by outcome, batch items by outcome, records, duplicates, conflicts and the
        number of distinct client connections seen on protocol requests."""
        records, duplicates, conflicts = self.records.counts()
        with self._lock:
            return {
                "requests": dict(self._requests),
                "batch_items": dict(self._batch_items),
                "records": records,
                "duplicates": duplicates,
                "conflicts": conflicts,
                "connections": len(self._connections),
            }

    def reset(self) -> None:
        """Forget every record, statistic and fault."""
        self.records.reset()
        self.injector.reset()
        self._clear_statistics()

    def close(self) -> None:
        """Close the storage; later requests answer 503."""
        self.records.close()
