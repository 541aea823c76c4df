"""Helpers shared by the benchmarks in bench/: a no-op job, a time budget, throwaway
PostgreSQL databases, issued invoices, child processes that are always cleaned up, CPU
accounting from /proc, a tiny JSON-over-HTTP client and a quiet simulator.

``python -m bench._common simulate PORT`` (from the repository root) serves the registry
simulator on 127.0.0.1:PORT without an access log, in its own process (so it does not share a
GIL with the harness or the workers it is measured against).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BEIJING_CODE = "011002600111"


class Deadline:
    """The time budget of the whole run."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self, what: str) -> None:
        if self.left() <= 0:
            raise TimeoutError(f"deadline passed ({what})")


def _bench_database(name: str) -> str:
    if not name.startswith("portal_bench_"):
        raise ValueError("the benchmarks only create and drop databases named portal_bench_*")
    return name


def create_database(name: str) -> str:
    """(Re)create the empty PostgreSQL database ``name`` (portal_bench_* only); its URL."""
    import psycopg

    drop_database(name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{_bench_database(name)}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    """Drop the PostgreSQL database ``name`` (portal_bench_* only) if it exists."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_bench_database(name)}" WITH (FORCE)')


def issue_invoices(count: int, *, issue_date, actor: str, chunk: int = 1000) -> None:
    """Issue ``count`` ordinary Beijing invoices with their outbox rows, ``chunk`` per commit
    (inside an app context). Each commit hands its rows to RQ, ``REGISTRY_BATCH_SIZE`` a job."""
    from decimal import Decimal

    from portal.extensions import db
    from portal.models import Invoice
    from portal.services import outbox

    made = 0
    while made < count:
        rows = []
        for n in range(made, min(count, made + chunk)):
            number = f"{n + 1:08d}"
            rows.append(
                Invoice(
                    key=f"{BEIJING_CODE}-{number}",
                    code=BEIJING_CODE,
                    number=number,
                    kind="e_ordinary",
                    issue_date=issue_date,
                    amount=Decimal("100.00"),
                    tax=Decimal("6.00"),
                    total=Decimal("106.00"),
                    buyer_tax_id="911101017967003199",
                    buyer_name="北京示例科技有限公司",
                    seller_tax_id="91320621MA1MRHG205",
                    check_code=f"{n:020d}",
                    source="api",
                )
            )
        db.session.add_all(rows)
        db.session.flush()
        outbox.queue_deliveries(rows, reason="issued", actor=actor)
        db.session.commit()
        db.session.expunge_all()
        made += len(rows)


def noop() -> None:
    """The job of the plain-RQ baseline: does nothing, returns None."""
    return None


def compile_catalogs() -> None:
    """Compile the translation catalogues (``make translations``, as ``make run`` does): the
    portal in production settings refuses to start without them."""
    subprocess.run(["make", "--silent", "translations"], cwd=ROOT, check=True, timeout=120)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 5.0):
    """Send a JSON request and return the decoded JSON answer (raises on HTTP errors)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as answer:
        return json.loads(answer.read() or b"null")


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Call ``predicate`` until it returns something truthy; TimeoutError after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # not up yet
            value = None
        if value:
            return value
        if time.monotonic() >= end:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Children:
    """Child processes, each in its own session (so its own children go with it), always
    stopped on ``stop_all`` (SIGTERM, then SIGKILL after a grace period)."""

    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, argv: list[str], env: dict, log: Path | None = None) -> subprocess.Popen:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the proc
        try:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if log:
                out.close()
        self.procs.append(proc)
        return proc

    def stop(self, procs: Iterable[subprocess.Popen], grace: float = 15.0) -> None:
        """SIGTERM each process group, wait up to ``grace`` seconds, then SIGKILL what is left."""
        procs = [p for p in procs if p.poll() is None]
        for p in procs:
            _signal_group(p, signal.SIGTERM)
        end = time.monotonic() + grace
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.1, end - time.monotonic()))
        for p in procs:
            # The leader may be gone while its group (e.g. an RQ scheduler child) lives on.
            _signal_group(p, signal.SIGKILL)
            if p.poll() is None:
                p.wait(timeout=5)
        self.procs = [p for p in self.procs if p not in procs]

    def stop_all(self, grace: float = 10.0) -> None:
        self.stop(list(self.procs), grace)
        for p in list(self.procs):
            _signal_group(p, signal.SIGKILL)
        self.procs.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    # The child is its own session and group leader.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


# --------------------------------------------------------------------------------------------
# CPU accounting from /proc: who burnt the two cores while something ran.


@dataclass(frozen=True)
class _Proc:
    comm: str
    session: int
    cpu: float  # user + system seconds


def _read_procs() -> dict[int, _Proc]:
    procs = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        cpu = (int(rest[11]) + int(rest[12])) / _CLOCK_TICKS
        procs[int(entry.name)] = _Proc(comm, int(rest[3]), cpu)
    return procs


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields[:8]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / _CLOCK_TICKS, sum(ticks) / _CLOCK_TICKS


@dataclass
class CpuSnapshot:
    at: float
    procs: dict[int, _Proc]
    machine: tuple[float, float]

    @classmethod
    def take(cls) -> CpuSnapshot:
        return cls(time.monotonic(), _read_procs(), _machine_busy())


def cpu_breakdown(
    before: CpuSnapshot, after: CpuSnapshot, groups: dict[str, set[int]]
) -> tuple[Counter, float, float]:
    """CPU seconds spent between two snapshots, by group.

    ``groups`` maps a label to session ids (our children are session leaders, so the session
    holds every process they started). Other processes are grouped by command name
    (``postgres``, ``redis-server``: machine-wide, other users of the server included; the
    rest as ``other:COMM``).
    Returns (seconds by label, machine busy seconds, wall seconds).
    """
    by_session = {sid: label for label, sids in groups.items() for sid in sids}
    spent: Counter = Counter()
    for pid, proc in after.procs.items():
        old = before.procs.get(pid)
        delta = proc.cpu - (old.cpu if old and old.comm == proc.comm else 0.0)
        if delta <= 0:
            continue
        if pid == os.getpid():
            label = "harness"
        elif proc.session in by_session:
            label = by_session[proc.session]
        elif proc.comm.startswith("postgres"):
            label = "postgres (all)"
        elif proc.comm.startswith("redis-server"):
            label = "redis-server (all)"
        else:
            label = f"other:{proc.comm}"
        spent[label] += delta
    busy = after.machine[0] - before.machine[0]
    return spent, busy, after.at - before.at


# --------------------------------------------------------------------------------------------


def _simulate(port: int) -> None:
    sys.path.insert(0, str(ROOT))
    from portal.registry.simulator import serve_simulator

    serve_simulator("127.0.0.1", port, None, quiet=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "simulate":
        _simulate(int(sys.argv[2]))
    else:
        sys.exit("usage: python -m bench._common simulate PORT")
