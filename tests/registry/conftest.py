"""Fixtures for the registry client and simulator tests: one real simulator served over HTTP
for the whole session, reset before each test."""

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from portal.registry import RegistryClient, SimulatorServer
from portal.registry.simulator import faults as simulator_faults

LEGACY_CODE = "011001900111"  # a Beijing 12-digit e-普票 code
SELLER_TAX_ID = "911101017967003199"  # a valid Beijing unified social credit code


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[SimulatorServer]:
    """The simulator, served once for the session (starting one per test costs time)."""
    with SimulatorServer() as server:
        yield server


@pytest.fixture
def simulator(simulator_server: SimulatorServer) -> SimulatorServer:
    """The simulator with no records, statistics or faults."""
    simulator_server.state.reset()
    return simulator_server


@pytest.fixture
def registry_client(simulator: SimulatorServer) -> Iterator[RegistryClient]:
    """A client of the fresh simulator (named apart from the Flask test ``client``); short
    timeouts keep failing tests quick."""
    with RegistryClient(simulator.url, connect_timeout=1.0, read_timeout=5.0) as registry:
        yield registry


_serials = itertools.count(1)


@pytest.fixture
def make_invoice() -> Callable[..., dict[str, Any]]:
    """Build a valid invoice with a fresh identity; keyword arguments override fields.

    ``digital=True`` builds a 数电票 (no code, 20-digit number, no check code).
    """

    def build(digital: bool = False, **overrides: Any) -> dict[str, Any]:
        serial = next(_serials)
        invoice = {
            "code": LEGACY_CODE,
            "number": f"{serial:08d}",
            "kind": "10",
            "issue_date": "2025-05-01",
            "amount": "100.00",
            "tax": "6.00",
            "total": "106.00",
            "buyer_tax_id": "91320621MA1MRHG205",
            "buyer_name": "北京某某科技有限公司",
            "seller_tax_id": SELLER_TAX_ID,
            "check_code": "65431824771847114698",
        }
        if digital:
            invoice.update(code="", number=f"2511{serial:016d}", kind="32", check_code="")
        invoice.update(overrides)
        return invoice

    return build


class LatencyWatch:
    """The simulator's injected-latency sleeps of one length: how many, and the most at once.

    Tests of concurrency count overlapping sleeps instead of reading a clock, so that a slow or
    busy machine cannot fail them: a server answering one request after another never has more
    than one request asleep.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.count = self.peak = self._now = 0
        self._lock = threading.Lock()

    def sleep(self, real_sleep: Callable[[float], None], seconds: float) -> None:
        if seconds != self.seconds:
            real_sleep(seconds)
            return
        with self._lock:
            self.count += 1
            self._now += 1
            self.peak = max(self.peak, self._now)
        try:
            real_sleep(seconds)
        finally:
            with self._lock:
                self._now -= 1


@pytest.fixture
def latency_watch(
    simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[[float], LatencyWatch]:
    """``latency_watch(seconds)`` sets the simulator's latency and watches its sleeps."""
    real_sleep = time.sleep

    def watch(seconds: float) -> LatencyWatch:
        watcher = LatencyWatch(seconds)
        monkeypatch.setattr(simulator_faults.time, "sleep", lambda s: watcher.sleep(real_sleep, s))
        simulator.state.set_faults({"latency_ms": seconds * 1000})
        return watcher

    return watch
