"""Chaos check for registry delivery: nothing lost, nothing registered twice.

Issues N invoices while the simulated registry fails 30 % of calls and times out 5 %, goes down
for a while in the middle, two RQ workers are SIGKILLed again and again, and Redis is flushed
once; the faults stop after ``--faults-off`` seconds. Retries back off as in production (30 s
base, an hour's cap) unless told otherwise. Passes (exit 0) when the registry holds every
invoice exactly once, no PUT conflicted, every submission reached a final state and the last
invoice was registered within ``--recovery-bar`` seconds of the faults stopping (the
*recovery* figure, printed with the time since the outage ended).

    DATABASE_URL=… REDIS_URL=redis://127.0.0.1:6379/12 python bench/chaos.py --invoices 10000

Without DATABASE_URL it uses a fresh SQLite file; without REDIS_URL, redis://127.0.0.1:6379/12.
It flushes only that Redis database number, never the whole server.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench._common import issue_invoices  # noqa: E402
from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import (  # noqa: E402
    AuditEvent,
    Invoice,
    RegistryState,
    Submission,
    SubmissionState,
)
from portal.registry import RegistryClient, SimulatorServer  # noqa: E402
from portal.services import outbox  # noqa: E402

FINAL = {SubmissionState.SUCCEEDED, SubmissionState.DEAD}


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def counts_by_state() -> dict[str, int]:
    db.session.rollback()  # see what the workers committed
    return outbox.backlog_counts()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--error-rate", type=float, default=0.30)
    parser.add_argument("--timeout-rate", type=float, default=0.05)
    parser.add_argument("--deadline", type=float, default=600, help="seconds before giving up")
    parser.add_argument(
        "--faults-off", type=float, default=20, help="seconds in when errors and timeouts stop"
    )
    parser.add_argument("--backoff-base", type=float, default=30.0, help="REGISTRY_BACKOFF_BASE")
    parser.add_argument("--backoff-cap", type=float, default=3600.0, help="REGISTRY_BACKOFF_CAP")
    parser.add_argument(
        "--recovery-bar",
        type=float,
        default=120,
        help="seconds after the faults stop by which the last invoice must be registered",
    )
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=20,
        help="invoices per registry request (small: more requests, more chaos)",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="empty the portal's tables first (DESTROYS the data in DATABASE_URL)",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="portal-chaos-"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'chaos.db'}"
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/12"
    simulator = SimulatorServer(client_timeout_hint=1.0).start()
    settings = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REGISTRY_URL": simulator.url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "PORTAL_ENV": "development",
        "REGISTRY_READ_TIMEOUT": "1.0",
        "REGISTRY_LEASE_SECONDS": "4",
        "REGISTRY_BACKOFF_BASE": str(args.backoff_base),
        "REGISTRY_BACKOFF_CAP": str(args.backoff_cap),
        "REGISTRY_MAX_ATTEMPTS": "60",
        "REGISTRY_RATE_LIMIT": "0",
        "BREAKER_FAILURE_THRESHOLD": "8",
        "BREAKER_COOLDOWN_SECONDS": "1.0",
        "OUTBOX_SWEEP_INTERVAL": "1.0",
        "OUTBOX_ENQUEUE_GRACE": "3",
        "REGISTRY_BATCH_SIZE": str(args.batch_size),
    }
    os.environ.update(settings)
    env = {**os.environ, **settings, "PORTAL_INSTANCE_PATH": str(tmp)}
    app = create_app("development")
    workers: list[subprocess.Popen] = []
    kills = flushes = 0
    started = time.monotonic()
    with app.app_context():
        if database_url.startswith("sqlite"):
            from flask_migrate import upgrade

            upgrade(directory=str(ROOT / "migrations"))
        if args.reset:
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(table.delete())
            db.session.commit()
        if db.session.scalar(select(func.count()).select_from(Invoice)):
            sys.exit("the database already holds invoices; use an empty one or pass --reset")
        from portal.queue import redis_connection

        redis = redis_connection()
        redis.flushdb()
        simulator.state.set_faults(
            {
                "error_rate": args.error_rate,
                "timeout_rate": args.timeout_rate,
                "timeout_seconds": 1.5,
                "latency_ms": 20,
                "seed": args.seed,
            }
        )
        workers = [start_worker(env) for _ in range(args.workers)]
        try:
            issue_invoices(args.invoices, issue_date=date(2026, 5, 1), actor="chaos", chunk=500)
            print(
                f"issued {args.invoices} invoices in {time.monotonic() - started:.1f}s", flush=True
            )
            t0 = time.monotonic()
            outage_on = outage_done = False
            outage_ended_at = faults_off_at = None  # wall clock, as registered_at is
            next_kill = t0 + 1.0
            while True:
                now = time.monotonic()
                elapsed = now - t0
                if kills < args.kills and now >= next_kill:
                    victim = rng.randrange(len(workers))
                    os.killpg(workers[victim].pid, signal.SIGKILL)
                    workers[victim].wait()
                    workers[victim] = start_worker(env)
                    kills += 1
                    next_kill = now + rng.uniform(1.0, 2.5)
                    print(
                        f"  t={elapsed:5.1f}s SIGKILL worker {victim} ({kills}/{args.kills})",
                        flush=True,
                    )
                if not outage_done and not outage_on and elapsed >= 3:
                    simulator.state.set_faults({"outage": True})
                    outage_on = True
                    print(f"  t={elapsed:5.1f}s registry outage begins", flush=True)
                if outage_on and elapsed >= 7:
                    simulator.state.set_faults({"outage": False})
                    outage_on, outage_done = False, True
                    outage_ended_at = time.time()
                    print(f"  t={elapsed:5.1f}s registry outage ends", flush=True)
                if faults_off_at is None and elapsed >= args.faults_off:
                    simulator.state.set_faults({"error_rate": 0, "timeout_rate": 0})
                    faults_off_at = time.time()
                    print(f"  t={elapsed:5.1f}s errors and timeouts off", flush=True)
                if flushes == 0 and elapsed >= 5:
                    redis.flushdb()
                    flushes += 1
                    print(f"  t={elapsed:5.1f}s Redis flushed", flush=True)
                state = counts_by_state()
                unfinished = sum(n for s, n in state.items() if s not in FINAL)
                done = outage_done and faults_off_at and kills >= args.kills and flushes
                if done and unfinished == 0:
                    break
                if now - started > args.deadline:
                    print(f"deadline passed with {unfinished} submissions unfinished: {state}")
                    break
                time.sleep(0.25)
        finally:
            for w in workers:
                if w.poll() is None:
                    os.killpg(w.pid, signal.SIGTERM)
            for w in workers:
                try:
                    w.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(w.pid, signal.SIGKILL)
        elapsed = time.monotonic() - started
        simulator.state.set_faults(
            {"error_rate": 0, "timeout_rate": 0, "outage": False, "latency_ms": 0}
        )
        stats = simulator.state.stats()
        registry_keys = [
            r["key"] if "key" in r else _key(r)
            for r in RegistryClient(simulator.url).iter_invoices()
        ]
        db.session.rollback()
        ledger_keys = set(db.session.scalars(select(Invoice.key)))
        registered = db.session.scalar(
            select(func.count())
            .select_from(Invoice)
            .where(Invoice.registry_state == RegistryState.REGISTERED)
        )
        state = outbox.backlog_counts()
        attempts = db.session.scalar(select(func.sum(Submission.attempts))) or 0
        last_registered = db.session.scalar(select(func.max(Invoice.registered_at)))
        brought_forward = db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "submission.brought_forward")
        )
    simulator.stop()

    unfinished = sum(n for s, n in state.items() if s not in FINAL)
    last_at = last_registered.timestamp() if last_registered else None
    since_outage = last_at - outage_ended_at if last_at and outage_ended_at else None
    since_faults = last_at - faults_off_at if last_at and faults_off_at else None
    checks = {
        "every invoice registered in the ledger": registered == args.invoices,
        "registry holds exactly the ledger's invoices": sorted(registry_keys)
        == sorted(ledger_keys),
        "no invoice registered twice": len(registry_keys) == len(set(registry_keys)),
        "no conflicting PUT": stats["conflicts"] == 0,
        "no submission outside a final state": unfinished == 0,
        "no dead letters": state.get(SubmissionState.DEAD, 0) == 0,
        f"last invoice registered within {args.recovery_bar:.0f} s of the faults stopping": (
            since_faults is not None and since_faults <= args.recovery_bar
        ),
    }
    print(
        f"\nchaos run: {args.invoices} invoices, {args.workers} workers, {kills} SIGKILLs, "
        f"{flushes} Redis flush, outage 3s→7s, error rate {args.error_rate:.0%}, "
        f"timeouts {args.timeout_rate:.0%} until {args.faults_off:.0f}s, backoff "
        f"{args.backoff_base:g}s…{args.backoff_cap:g}s"
    )
    print(f"  elapsed                 {elapsed:8.1f} s")
    print(f"  recovery after outage   {_seconds(since_outage)}  (last invoice registered)")
    print(f"  recovery after faults   {_seconds(since_faults)}  (last invoice registered)")
    print(f"  retries brought forward {brought_forward:8d}")
    print(f"  registry records        {stats['records']:8d}")
    print(f"  repeated same-field PUTs{stats['duplicates']:8d}  (idempotent; harmless)")
    print(f"  conflicting PUTs        {stats['conflicts']:8d}")
    print(f"  delivery attempts       {attempts:8d}")
    print(f"  submissions by state    {dict(sorted(state.items()))}")
    print(f"  registry requests       {dict(sorted(stats['requests'].items()))}")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    return 0 if all(checks.values()) else 1


def _seconds(value: float | None) -> str:
    return "       —" if value is None else f"{value:8.1f} s"


def _key(record: dict) -> str:
    return f"{record['code']}-{record['number']}" if record.get("code") else record["number"]


if __name__ == "__main__":
    sys.exit(main())
