"""The city's invoice registry as the portal sees it: a client, and a simulator to talk to.

The client classifies every write as SUCCESS, TRANSIENT or PERMANENT (see ``client``); the
simulator serves the same protocol with injectable faults (see ``simulator``).
"""

from portal.registry.client import (
    DeliveryResult,
    InvoiceKeyError,
    Outcome,
    RegistryClient,
    RegistryError,
    invoice_key,
    parse_retry_after,
)
from portal.registry.simulator import (
    SimulatorServer,
    create_simulator_app,
    serve_simulator,
    simulator_state,
)

__all__ = [
    "DeliveryResult",
    "InvoiceKeyError",
    "Outcome",
    "RegistryClient",
    "RegistryError",
    "SimulatorServer",
    "create_simulator_app",
    "invoice_key",
    "parse_retry_after",
    "serve_simulator",
    "simulator_state",
]
