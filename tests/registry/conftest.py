"""Fixtures for the registry client and simulator tests: one real simulator served over HTTP
for the whole session, reset before each test."""

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from portal.registry import RegistryClient, SimulatorServer

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
