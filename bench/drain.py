"""Registry backlog drain: invoices per second against the simulator, beside plain RQ.

DESIGN.md §8: at least 1,000 invoices a second on a 2-core machine against the simulator with
20 ms latency (5x the per-job ceiling of a plain RQ worker), with the request rate to the
registry capped by configuration.

    .venv/bin/python bench/drain.py [--invoices 20000] [--workers 2,4] [--database-url URL]

In one run it measures

1. the baseline: M no-op jobs drained by a plain forking ``rq worker --burst`` (and, for
   context, by ``rq.SimpleWorker``) -> jobs/s;
2. the drain: N invoices issued with their outbox rows into a fresh database (PostgreSQL by
   default, created here and dropped at the end; ``--database sqlite`` for a SQLite file)
   while the RQ workers are suspended, so the whole backlog waits in Redis; then W
   ``flask --app wsgi worker --queues registry`` processes boot, the suspension is lifted, and
   the clock runs until every submission is ``succeeded``. The registry simulator runs in its
   own process with ``latency_ms`` = 20; ``REGISTRY_RATE_LIMIT`` caps requests per second.

Both rates are measured the same way, from the first job's start to the last job's end as RQ
recorded them (worker start-up is not part of either); the wall time from lifting the
suspension to the last row seen succeeded is printed beside it. Only the Redis database of
``--redis-url`` (number 11 by default) is ever flushed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402
from rq import Queue, Worker  # noqa: E402
from rq.job import Job  # noqa: E402
from rq.registry import FinishedJobRegistry  # noqa: E402
from rq.suspension import resume, suspend  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from bench._common import (  # noqa: E402
    Children,
    CpuSnapshot,
    Deadline,
    cpu_breakdown,
    create_database,
    drop_database,
    free_port,
    http_json,
    issue_invoices,
    wait_until,
)

TARGET = 1000.0  # invoices per second, DESIGN.md §8
NOOP_QUEUE = "bench-noop"
NOOP_FUNC = "bench._common.noop"
PG_BENCH_DB = "portal_bench_drain"


@dataclass
class Baseline:
    worker: str
    jobs: int
    seconds: float  # first job started -> last job ended
    wall: float  # process start -> exit (imports included)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0


@dataclass
class DrainRun:
    workers: int
    invoices: int
    issue_seconds: float = 0.0
    boot_seconds: float = 0.0
    seconds: float = 0.0  # first delivery job started -> last delivery job ended
    wall: float = 0.0  # suspension lifted -> every row seen succeeded (poll granularity)
    succeeded: int = 0
    states: dict = field(default_factory=dict)
    jobs: int = 0
    job_ms_mean: float = 0.0
    registry_ms_mean: float = 0.0
    requests: dict = field(default_factory=dict)
    batch_items: dict = field(default_factory=dict)
    records: int = 0
    duplicates: int = 0
    cpu: dict = field(default_factory=dict)
    machine_busy: float = 0.0
    cpu_wall: float = 0.0
    lock_waiters: float | None = None  # mean backends waiting on an advisory lock (PostgreSQL)
    jobs_enqueued: int = 0
    db_seconds: float = 0.0  # first row claimed -> last row succeeded, from the database
    window_source: str = "RQ"
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and self.succeeded == self.invoices

    @property
    def rate(self) -> float:
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0

    @property
    def other_cpu(self) -> float:
        """CPU seconds the machine spent on anything but this run's processes, PostgreSQL
        and Redis: live processes of others plus everything that exited meanwhile."""
        ours = sum(v for k, v in self.cpu.items() if not k.startswith("other:"))
        return max(0.0, self.machine_busy - ours)

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())

    @property
    def request_rate(self) -> float:
        return self.request_count / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------------------------
# Set-up helpers.


def redis_db_number(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def job_window(redis: Redis, job_ids: list[str]) -> tuple[int, float, float]:
    """(jobs, seconds from the first start to the last end, mean job seconds)."""
    starts, ends, spans = [], [], []
    for i in range(0, len(job_ids), 500):
        for job in Job.fetch_many(job_ids[i : i + 500], connection=redis):
            if job is None or job.started_at is None or job.ended_at is None:
                continue
            starts.append(job.started_at)
            ends.append(job.ended_at)
            spans.append((job.ended_at - job.started_at).total_seconds())
    if not starts:
        return 0, 0.0, 0.0
    return len(starts), (max(ends) - min(starts)).total_seconds(), sum(spans) / len(spans)


def finished_job_ids(redis: Redis, queue: str) -> list[str]:
    return FinishedJobRegistry(queue, connection=redis).get_job_ids(cleanup=False)


def rq_cli() -> str:
    return str(Path(sys.executable).with_name("rq"))


# --------------------------------------------------------------------------------------------
# 1. The baseline: plain RQ draining no-op jobs.


def run_noop_baseline(
    children: Children,
    redis: Redis,
    redis_url: str,
    worker_class: str,
    jobs: int,
    tmp: Path,
    deadline: Deadline,
) -> Baseline:
    redis.flushdb()
    queue = Queue(NOOP_QUEUE, connection=redis)
    with redis.pipeline() as pipe:
        for start in range(0, jobs, 1000):
            queue.enqueue_many(
                [
                    Queue.prepare_data(NOOP_FUNC, result_ttl=3600)
                    for _ in range(min(1000, jobs - start))
                ],
                pipeline=pipe,
            )
        pipe.execute()
    argv = [
        rq_cli(),
        "worker",
        "--burst",
        "--url",
        redis_url,
        "--path",
        str(ROOT),
        "--worker-class",
        worker_class,
        "--logging_level",
        "WARNING",  # what `flask worker` logs at too
        NOOP_QUEUE,
    ]
    t0 = time.monotonic()
    proc = children.start(argv, os.environ.copy(), tmp / f"noop-{worker_class}.log")
    try:
        proc.wait(timeout=max(1.0, deadline.left()))
    except Exception:
        children.stop([proc], grace=2)
        raise
    wall = time.monotonic() - t0
    children.procs.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"rq worker exited {proc.returncode}; see {tmp}/noop-*.log")
    done, seconds, _ = job_window(redis, finished_job_ids(redis, NOOP_QUEUE))
    if done != jobs:
        raise RuntimeError(f"{worker_class}: {done} of {jobs} no-op jobs finished")
    return Baseline(worker_class, done, seconds, wall)


# --------------------------------------------------------------------------------------------
# 2. The drain.


def empty_tables() -> None:
    """Remove every row the previous run made (the schema stays)."""
    from portal.extensions import db

    tables = [t.name for t in db.metadata.sorted_tables]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
    db.session.commit()


def advisory_lock_waiters() -> int | None:
    """Backends of this database waiting on an advisory lock now: the audit chain lock
    (``portal.services.audit``) is the only advisory lock the portal takes."""
    from portal.extensions import db

    if db.engine.dialect.name != "postgresql":
        return None
    return db.session.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
    )


def db_window() -> float:
    """Seconds from the first row claimed (its audit event) to the last row finished."""
    from portal.extensions import db
    from portal.models import AuditEvent, Submission

    db.session.rollback()
    first = db.session.scalar(
        select(func.min(AuditEvent.created_at)).where(AuditEvent.action == "submission.in_flight")
    )
    last = db.session.scalar(select(func.max(Submission.finished_at)))
    return (last - first).total_seconds() if first and last else 0.0


def counts_by_state() -> dict[str, int]:
    from portal.extensions import db
    from portal.services import outbox

    db.session.rollback()  # see what the workers committed
    return outbox.backlog_counts()


def worker_argv(profile_dir: Path | None, index: int) -> list[str]:
    flask = ["-m", "flask", "--app", "wsgi", "worker", "--queues", "registry"]
    if profile_dir is None:
        return [sys.executable, *flask]
    out = profile_dir / f"worker-{index}.prof"
    return [sys.executable, "-m", "cProfile", "-o", str(out), *flask]


def run_drain(
    children: Children,
    redis: Redis,
    workers: int,
    invoices: int,
    env: dict,
    simulator: str,
    sim_session: int,
    args: argparse.Namespace,
    tmp: Path,
    deadline: Deadline,
) -> DrainRun:
    from portal.extensions import db
    from portal.models import SubmissionAttempt, SubmissionState

    run = DrainRun(workers=workers, invoices=invoices)
    empty_tables()
    redis.flushdb()
    http_json("POST", f"{simulator}/_sim/reset")
    http_json("PUT", f"{simulator}/_sim/faults", {"latency_ms": args.latency_ms})

    # The backlog: every invoice and its job, with nobody allowed to take a job yet.
    suspend(redis)
    t0 = time.monotonic()
    issue_invoices(invoices, issue_date=date.today() - timedelta(days=7), actor="bench")
    run.issue_seconds = time.monotonic() - t0
    queued = run.jobs_enqueued = Queue("registry", connection=redis).count
    print(
        f"  W={workers}: issued {invoices:,} invoices ({queued} delivery jobs waiting in Redis) "
        f"in {run.issue_seconds:.1f} s",
        flush=True,
    )
    deadline.check("issuing invoices")

    # Boot the workers (suspended), then lift the suspension and start the clock.
    t0 = time.monotonic()
    procs = [
        children.start(worker_argv(args.profile_dir, i), env, tmp / f"worker-W{workers}-{i}.log")
        for i in range(workers)
    ]
    try:
        wait_until(
            lambda: (
                len(Worker.all(connection=redis)) >= workers
                and all(p.poll() is None for p in procs)
            ),
            timeout=min(60.0, max(1.0, deadline.left())),
            what=f"{workers} workers to register",
        )
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a worker exited with {p.returncode}; see {tmp}")
        run.boot_seconds = time.monotonic() - t0
        sessions = {p.pid for p in procs}
        cpu_before = CpuSnapshot.take()
        t0 = time.monotonic()
        resume(redis)
        last_progress, last_done = t0, -1
        waiters: list[int] = []
        while True:
            states = counts_by_state()
            waiting = advisory_lock_waiters()
            if waiting is not None:
                waiters.append(waiting)
            done = states.get(SubmissionState.SUCCEEDED, 0)
            if done >= invoices:
                break
            now = time.monotonic()
            if done != last_done:
                last_progress, last_done = now, done
            if now - last_progress > args.stall_seconds:
                run.error = f"no progress for {args.stall_seconds:.0f} s: {states}"
                break
            if deadline.left() <= 0:
                run.error = f"deadline passed: {states}"
                break
            if any(p.poll() is not None for p in procs):
                run.error = f"a worker exited; see {tmp}"
                break
            time.sleep(args.poll_interval)
        run.wall = time.monotonic() - t0
        cpu_after = CpuSnapshot.take()
        if waiters:
            run.lock_waiters = sum(waiters) / len(waiters)
    finally:
        children.stop(procs, grace=20 if args.profile_dir else 10)

    run.states = counts_by_state()
    run.succeeded = run.states.get(SubmissionState.SUCCEEDED, 0)
    ids = finished_job_ids(redis, "registry")
    ids = [job.id for job in Job.fetch_many(ids, connection=redis) if job is not None]
    run.jobs, run.seconds, job_s = job_window(redis, ids)
    run.job_ms_mean = job_s * 1000
    run.db_seconds = db_window()
    if run.jobs < run.jobs_enqueued:
        # RQ kept fewer job records than it ran: time the drain from the database instead.
        run.window_source = f"database ({run.jobs} of {run.jobs_enqueued} RQ job records)"
        run.seconds = run.db_seconds
    run.registry_ms_mean = float(
        db.session.scalar(select(func.avg(SubmissionAttempt.duration_ms))) or 0.0
    )
    stats = http_json("GET", f"{simulator}/_sim/stats")
    run.requests = stats["requests"]
    run.batch_items = stats.get("batch_items", {})
    run.records = stats["records"]
    run.duplicates = stats["duplicates"]
    spent, run.machine_busy, run.cpu_wall = cpu_breakdown(
        cpu_before, cpu_after, {"workers": sessions, "simulator": {sim_session}}
    )
    run.cpu = dict(spent)
    return run


# --------------------------------------------------------------------------------------------
# Output.


def print_baselines(baselines: list[Baseline]) -> None:
    print("\nbaseline: plain RQ draining no-op jobs (same Redis, same run)")
    print(f"  {'worker':18} {'jobs':>7} {'seconds':>8} {'jobs/s':>8} {'wall s':>7}")
    for b in baselines:
        print(f"  {b.worker:18} {b.jobs:7,} {b.seconds:8.2f} {b.rate:8.0f} {b.wall:7.2f}")


def print_runs(runs: list[DrainRun], plain: float, args: argparse.Namespace) -> None:
    print(
        f"\ndrain: {args.database_label}, simulator latency {args.latency_ms:g} ms, "
        f"cap {args.rate_limit} req/s, batch {args.batch_size}"
    )
    head = (
        f"  {'W':>2} {'invoices':>9} {'seconds':>8} {'inv/s':>7} {'db s':>6} {'wall s':>7} "
        f"{'jobs':>5} {'req':>5} {'req/s':>6} {'job ms':>7} {'reg ms':>7} {'lock':>5} "
        f"{'÷RQ':>6} {'÷1000':>6}  ok"
    )
    print(head)
    for r in runs:
        ok = "yes" if r.complete else "NO: " + (r.error or "")
        ratio = r.rate / plain if plain else 0.0
        print(
            f"  {r.workers:>2} {r.succeeded:9,} {r.seconds:8.2f} {r.rate:7.0f} "
            f"{r.db_seconds:6.2f} {r.wall:7.2f} {r.jobs:5} {r.request_count:5} "
            f"{r.request_rate:6.1f} {r.job_ms_mean:7.1f} {r.registry_ms_mean:7.1f} "
            f"{_lock_cell(r):>5} {ratio:5.1f}x {r.rate / TARGET:5.2f}x  {ok}"
        )
    print(
        "  seconds: first delivery job started -> last ended (RQ's timestamps); wall: "
        "suspension lifted -> all succeeded (polled)\n  db s: first row claimed -> last row "
        "succeeded (the database's timestamps)\n  job ms: mean delivery job; reg ms: "
        "mean registry request inside it (20 ms injected latency included)\n  lock: share "
        "of the workers found waiting on the audit chain's advisory lock (sampled per poll)"
    )
    for r in runs:
        if r.window_source != "RQ":
            print(f"  W={r.workers}: seconds timed from the {r.window_source}")
    print("\ncpu seconds while draining (2 cores = 2.0 s per wall second):")
    labels = ["workers", "postgres (all)", "simulator", "redis-server (all)", "harness", "other"]
    print("  " + f"{'W':>2} {'wall':>6} {'busy':>6} " + " ".join(f"{x:>18}" for x in labels))
    for r in runs:
        cpu = {k: v for k, v in r.cpu.items() if not k.startswith("other:")}
        others = sorted(((v, k[6:]) for k, v in r.cpu.items() if k.startswith("other:")))[::-1]
        cpu["other"] = r.other_cpu
        cells = " ".join(f"{cpu.get(x, 0.0):18.2f}" for x in labels)
        print(f"  {r.workers:>2} {r.cpu_wall:6.2f} {r.machine_busy:6.2f} {cells}")
        if others:
            top = ", ".join(f"{name} {v:.2f}" for v, name in others[:4])
            print(f"     other (not started by this run; busy minus the rest): {top}, …")
        if r.cpu_wall and r.other_cpu / r.cpu_wall > 0.2:
            print(
                f"     WARNING: other processes used {r.other_cpu / r.cpu_wall:.1f} of "
                f"{os.cpu_count()} cores during this drain; its rate is understated"
            )
    cores = os.cpu_count() or 1
    for r in runs:
        spent = sum(v for k, v in r.cpu.items() if not k.startswith("other:"))
        if r.succeeded and spent:
            per = spent / r.succeeded * 1000
            worker = r.cpu.get("workers", 0.0) / r.succeeded * 1000
            print(
                f"  W={r.workers}: {per:.2f} ms CPU per invoice ({worker:.2f} in the workers) "
                f"-> CPU-bound ceiling on {cores} idle cores ≈ {cores * 1000 / per:,.0f} invoices/s"
            )
    for r in runs:
        extra = f"registry requests {dict(sorted(r.requests.items()))}"
        extra += f", records {r.records:,}, duplicates {r.duplicates}"
        print(f"  W={r.workers}: states {dict(sorted(r.states.items()))}; {extra}")


def _lock_cell(run: DrainRun) -> str:
    if run.lock_waiters is None:
        return "-"
    return f"{run.lock_waiters / run.workers:.0%}"


def print_profile(profile_dir: Path, top: int = 35) -> None:
    import pstats

    files = sorted(str(p) for p in profile_dir.glob("*.prof"))
    if not files:
        print(f"\nno profiles written in {profile_dir}")
        return
    stats = pstats.Stats(files[0])
    for f in files[1:]:
        stats.add(f)
    print(f"\nworker profile ({len(files)} processes merged; {profile_dir}):")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def summary_line(best: DrainRun, plain: Baseline, args: argparse.Namespace) -> str:
    ratio = best.rate / plain.rate if plain.rate else 0.0
    return (
        f"drain: {best.succeeded:,} invoices in {best.seconds:.1f} s = {best.rate:,.0f} "
        f"invoices/s with {best.workers} workers ({args.database_label}, "
        f"{args.latency_ms:g} ms registry latency, cap {args.rate_limit} req/s, "
        f"{best.request_rate:.0f} req/s used); plain RQ no-op: {plain.rate:,.0f} jobs/s "
        f"→ {ratio:.1f}×; target {TARGET:,.0f}/s: "
        f"{'met' if best.rate >= TARGET else 'NOT met'} ({best.rate / TARGET:.2f}×)"
    )


# --------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument(
        "--workers", default="2,4", help="comma-separated worker counts to try (default 2,4)"
    )
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--database-url",
        default=None,
        help="use this (empty, disposable) database instead of creating one; its tables are "
        "emptied before every run",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rate-limit", type=int, default=200, help="REGISTRY_RATE_LIMIT")
    parser.add_argument("--batch-size", type=int, default=100, help="REGISTRY_BATCH_SIZE")
    parser.add_argument("--noop-jobs", type=int, default=500, help="jobs for forking rq.Worker")
    parser.add_argument(
        "--simple-noop-jobs", type=int, default=2000, help="jobs for rq.SimpleWorker (0: skip)"
    )
    parser.add_argument("--deadline", type=float, default=300, help="seconds for the whole run")
    parser.add_argument("--stall-seconds", type=float, default=30)
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument(
        "--profile-dir",
        type=Path,
        default=None,
        help="run the workers under cProfile, write one .prof per worker here and print them",
    )
    args = parser.parse_args()
    args.worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    if args.database_url:
        args.database = "sqlite" if args.database_url.startswith("sqlite") else "postgresql"
    args.database_label = "PostgreSQL" if args.database == "postgresql" else "SQLite"
    return args


def main() -> int:
    args = parse_args()
    if redis_db_number(args.redis_url) == 0:
        sys.exit("give --redis-url a database number of the benchmark's own (it is flushed)")
    deadline = Deadline(args.deadline)
    tmp = Path(tempfile.mkdtemp(prefix="portal-drain-"))
    if args.profile_dir:
        args.profile_dir = args.profile_dir.resolve()
        args.profile_dir.mkdir(parents=True, exist_ok=True)
        for old in args.profile_dir.glob("*.prof"):
            old.unlink()
    children = Children()
    created_db = False
    redis = Redis.from_url(args.redis_url)

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # Ctrl-C even when started in the background (where SIGINT may be inherited as ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    started = time.monotonic()
    status = 1
    try:
        redis.ping()
        print(
            f"bench/drain.py: {args.invoices:,} invoices, workers {args.worker_counts}, "
            f"{args.database_label}, Redis {args.redis_url}, {os.cpu_count()} cores",
            flush=True,
        )

        # 1. Baseline.
        baselines = [
            run_noop_baseline(
                children, redis, args.redis_url, "rq.Worker", args.noop_jobs, tmp, deadline
            )
        ]
        if args.simple_noop_jobs:
            baselines.append(
                run_noop_baseline(
                    children,
                    redis,
                    args.redis_url,
                    "rq.SimpleWorker",
                    args.simple_noop_jobs,
                    tmp,
                    deadline,
                )
            )
        print_baselines(baselines)
        plain = baselines[0]

        # 2. The drain: database, simulator, app.
        if args.database == "postgresql":
            created_db = not args.database_url
            database_url = args.database_url or create_database(PG_BENCH_DB)
        else:
            database_url = args.database_url or f"sqlite:///{tmp / 'drain.db'}"
        port = free_port()
        simulator_url = f"http://127.0.0.1:{port}"
        sim = children.start(
            [sys.executable, "-m", "bench._common", "simulate", str(port)],
            os.environ.copy(),
            tmp / "simulator.log",
        )
        settings = {
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis_url,
            "REGISTRY_URL": simulator_url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "PORTAL_ENV": "development",
            "PORTAL_INSTANCE_PATH": str(tmp),
            "REGISTRY_RATE_LIMIT": str(args.rate_limit),
            "REGISTRY_BATCH_SIZE": str(args.batch_size),
        }
        os.environ.update(settings)
        env = {**os.environ, **settings}
        from flask_migrate import upgrade

        from portal import create_app
        from portal.extensions import db
        from portal.models import Invoice

        app = create_app("development")
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            if db.session.scalar(select(func.count()).select_from(Invoice)):
                sys.exit("the database already holds invoices; give an empty one")
            wait_until(
                lambda: http_json("GET", f"{simulator_url}/healthz", timeout=1)["ok"],
                timeout=30,
                what="the registry simulator",
            )
            print(f"\ndrain runs ({args.database_label}, {database_url}):", flush=True)
            runs = []
            for workers in args.worker_counts:
                deadline.check("before a drain run")
                run = run_drain(
                    children,
                    redis,
                    workers,
                    args.invoices,
                    env,
                    simulator_url,
                    sim.pid,
                    args,
                    tmp,
                    deadline,
                )
                runs.append(run)
                print(
                    f"  W={workers}: {run.succeeded:,} succeeded in {run.seconds:.2f} s = "
                    f"{run.rate:,.0f} invoices/s (wall {run.wall:.2f} s, workers booted in "
                    f"{run.boot_seconds:.1f} s)" + (f" — {run.error}" if run.error else ""),
                    flush=True,
                )
            db.session.remove()
            db.engine.dispose()

        print_baselines(baselines)
        print_runs(runs, plain.rate, args)
        if args.profile_dir:
            print_profile(args.profile_dir)
        complete = [r for r in runs if r.complete]
        command = " ".join([".venv/bin/python", "bench/drain.py", *sys.argv[1:]])
        print(f"\ncommand: {command}")
        print(f"total time {time.monotonic() - started:.0f} s")
        if not complete:
            print("no drain run completed")
            return 1
        best = max(complete, key=lambda r: r.rate)
        print(summary_line(best, plain, args))
        status = 0
    except KeyboardInterrupt as stop:
        print(f"\ninterrupted ({stop or 'Ctrl-C'}); cleaning up", file=sys.stderr)
        status = 130
    except Exception as error:
        print(f"\nfailed: {error!r}; logs in {tmp}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        children.stop_all()
        try:
            resume(redis)
            redis.flushdb()
        except Exception as error:
            print(f"could not clean Redis {args.redis_url}: {error!r}", file=sys.stderr)
        if created_db:
            try:
                drop_database(PG_BENCH_DB)
            except Exception as error:
                print(f"could not drop {PG_BENCH_DB}: {error!r}", file=sys.stderr)
        if status == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
