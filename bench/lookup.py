"""Invoice lookup under gunicorn, beside a bare Flask "hello" route in the same run.

DESIGN.md §8: the lookup page at least 60 % of the throughput of a bare Flask "hello" route on
the same server settings, and p99 under 30 ms at 16 concurrent clients, with a million invoices
in PostgreSQL.

    .venv/bin/python bench/lookup.py [--invoices 1000000] [--rounds 2] [--duration 10]
        [--warmup 5] [--clients 16] [--workers 2] [--threads 1] [--reuse-db] [--keep-db]
        [--wait-quiet SECONDS] [--deadline 900]

Needs ``wrk`` (Debian package ``wrk``) on PATH, PostgreSQL on 127.0.0.1:5432 (user postgres)
and Redis on 127.0.0.1:6379. What it does:

1. (Re)creates the database ``portal_bench_lookup``, migrates it and COPYs the invoices with
   their submissions and attempts (``bench/lookup_seed.py``), then reads its tables and
   indexes into the OS page cache (``pg_prewarm``). ``--reuse-db`` keeps a database seeded
   before (by ``bench/lookup_seed.py`` or ``--keep-db``) when it holds enough invoices.
2. Starts gunicorns with identical settings (``--workers``, ``--threads``: the ``sync``
   worker for 1 thread, else ``gthread``): ``bench.hello_app:app`` and the portal
   (``bench.lookup_app:app``, i.e. ``wsgi:app`` with the lookup rate limits raised from the
   environment) in production settings on that database and Redis database 10; and, with the
   same settings, ``bench.form_app:app``: Flask, its session and Flask-WTF's CSRF token on a
   fixed page as large as the lookup page, and nothing else (the "form floor": what any page
   with a CSRF-protected form costs when Flask makes it for each visitor); and
   ``bench.lookup_floor_app:app``, the "lookup floor": the portal's libraries (WTForms,
   Flask-Limiter on Redis, Flask-SQLAlchemy, Flask-Babel, Jinja) doing the least a lookup of
   the portal's shape needs, with an answer as large as the portal's (its docstring says
   what it leaves out): what no form lookup made of these parts can beat.
3. Makes the session cookie of a returning signed-out visitor (``returning_cookie``: the
   sign-in page, then the lookup page, keeping the cookie as a browser does) and an API token,
   and checks that a few real lookups (registered, pending, a wrong check code) give the right
   finding through the form and the API. Then, ``--rounds`` times, drives each target with wrk
   (``bench/lookup_wrk.lua``, ``--clients`` connections, 2 threads) for ``--duration`` seconds
   (after ``--warmup`` seconds of the same traffic in round 1): hello ``GET /``; the form
   floor; ``GET /lookup``, the page DESIGN.md §8 is about, twice: asked for by new visitors (no
   cookie) and by that returning visitor; ``POST /lookup``, the same POST to the lookup
   floor, and ``POST /api/v1/lookup``: the lookup itself (a random registered invoice each
   time, with the fields its holder would type; every response must be 200 and show the
   ``registered`` finding); and hello once more at the end. Interleaving the targets spreads
   any change in machine load over all of them.
4. Prints req/s, latency percentiles, errors and who used the CPU for each run (the servers,
   wrk, the PostgreSQL backends of the benchmark's database, Redis, and everything else),
   then the floors' and each portal endpoint's throughput as a share of hello's (all its
   runs pooled; p99 is the worst run's) and the verdict: both page rows against the targets,
   both lookup rows against issue 17's (a tenth of hello, p99 < 50 ms). Runs during which other
   processes used more than a quarter of a core are flagged; beside the measured ratio it
   prints the ratio of the stack's CPU per request (server, wrk, the database's backends; not
   the shared Redis), what the measured ratio tends to on a machine that does nothing else.

wrk shares the two cores with the servers (as do PostgreSQL and Redis); it does so for the
baseline and the portal alike, which is why the ratio, not the absolute rate, is the figure.
Exit status 0 when the page meets both targets for both kinds of visitor and no response was
unexpected, 1 when not, 2 on an error, 130 when interrupted. Everything started is stopped,
Redis database 10 is flushed and the database dropped (unless ``--keep-db``/``--reuse-db``) on
every exit, including Ctrl-C and failures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from redis import Redis  # noqa: E402

from bench import lookup_seed  # noqa: E402
from bench._common import (  # noqa: E402
    Children,
    CpuSnapshot,
    Deadline,
    compile_catalogs,
    cpu_breakdown,
    drop_database,
    free_port,
    wait_until,
)

TARGET_RATIO = 0.60
# The lookup page (DESIGN.md §8) as a new visitor and as a returning signed-out visitor get it.
PAGE_TARGETS = ("GET /lookup", "GET, returning")
TARGET_P99_MS = 30.0
# The lookup itself, through the form and the API (issue 17): a tenth of hello, p99 < 50 ms.
LOOKUP_TARGETS = ("POST /lookup", "POST /api/v1/lookup")
LOOKUP_RATIO = 0.10
LOOKUP_P99_MS = 50.0
REDIS_URL = "redis://127.0.0.1:6379/10"  # the only Redis database this benchmark may use
LUA = ROOT / "bench" / "lookup_wrk.lua"
WRK_THREADS = 2
# The same shape as each production limit, with ceilings the benchmark never reaches: the
# per-address lookup limit has two windows ("30 per minute;300 per hour": two counters to hit),
# the per-user one (the API's, and the form's for a signed-in customer) one ("60 per hour").
HUGE_LIMIT = "1000000000 per minute;1000000000 per hour"
HUGE_USER_LIMIT = "1000000000 per hour"


@dataclass
class Run:
    """One measured wrk run."""

    target: str  # hello | GET /lookup | POST /lookup
    requests: int
    seconds: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    unexpected: int  # not 200, or the expected text missing
    sample: str
    # CPU seconds by who: "gunicorn hello", "gunicorn portal", "wrk", "postgres (bench db)"
    # (the backends connected to the benchmark's database), "redis-server" (all of it: shared),
    # "others" (every other process on the machine, other PostgreSQL backends included).
    cpu: Counter = field(default_factory=Counter)
    busy: float = 0.0
    wall: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.unexpected


@dataclass
class Target:
    name: str
    url: str
    lua_args: list[str]


# --------------------------------------------------------------------------------------------
# Set-up.


def prepare_database(args: argparse.Namespace) -> str:
    """The URL of the seeded database: made now, or (``--reuse-db``) one seeded before."""
    url = lookup_seed.database_url(args.database)
    if args.reuse_db:
        try:
            with psycopg.connect(url) as conn:
                # The planner's estimate: counting a million rows exactly takes a while.
                rows = conn.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = 'invoices'"
                ).fetchone()
            if rows and rows[0] >= args.invoices * 0.99:
                with psycopg.connect(url) as conn:
                    conn.execute("TRUNCATE lookup_events")
                print(f"reusing {args.database} (≈{rows[0]:,} invoices)", flush=True)
                return url
        except psycopg.OperationalError:
            pass
        print(f"{args.database} missing or too small; seeding it", flush=True)
    started = time.perf_counter()
    url = lookup_seed.recreate_database(args.database)
    migrated = time.perf_counter() - started
    seconds = lookup_seed.seed(url, args.invoices)
    print(
        f"seeded {args.database}: migrations {migrated:.1f} s, {args.invoices:,} invoices + "
        f"submissions + attempts by COPY, indexes, ANALYZE in {seconds:.1f} s "
        f"({args.invoices / seconds:,.0f} invoices/s)",
        flush=True,
    )
    return url


def prewarm(url: str) -> float:
    """Read the lookup's tables and indexes into the OS page cache; returns the MB read."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        blocks = conn.execute(
            "SELECT sum(pg_prewarm(c.oid, 'read')) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') AND c.relname ~ "
            "'(invoices|submissions|submission_attempts)'"
        ).fetchone()[0]
    return int(blocks or 0) * 8192 / 1e6


def gunicorn_argv(app: str, port: int, args: argparse.Namespace) -> list[str]:
    """The same server settings for both apps; only the app differs."""
    worker_class = "sync" if args.threads == 1 else "gthread"
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--worker-class",
        worker_class,
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        app,
    ]


def portal_env(database_url: str, tmp: Path, args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "PORTAL_ENV": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": secrets.token_urlsafe(32),
        **lookup_seed.PRODUCTION_EXTRAS,
        # The lookup never calls the registry; nothing listens on the discard port.
        "REGISTRY_URL": "http://127.0.0.1:9",
        "PORTAL_INSTANCE_PATH": str(tmp / "instance"),
        "UPLOAD_DIR": str(tmp / "uploads"),
        "MAIL_URL": f"file://{tmp / 'mail'}",
        "LOOKUPS_PER_INVOICE_PER_DAY": "1000000",
        "RATELIMIT_LOOKUP_IP": HUGE_LIMIT,
        "RATELIMIT_LOOKUP_USER": HUGE_USER_LIMIT,
    }


def http(url: str, data: dict | None = None, cookie: str | None = None, timeout: float = 10):
    """(status, headers, text) of a GET, or a form POST when ``data`` is given."""
    body = None if data is None else urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(url, data=body)
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def returning_cookie(base: str) -> str:
    """The session cookie of a signed-out visitor who once opened the sign-in page (it holds
    the CSRF token of that page's form) and then the lookup page, as their browser keeps it: a
    returning visitor of the lookup page.

    The first lookup page such a visitor opens updates their session (Flask-Login notes that
    it is not a fresh sign-in) and sends it back; a browser keeps the new cookie, so later
    visits change nothing. Replaying the sign-in page's cookie instead would have every request
    re-sign a session no browser still sends."""
    cookie = None
    for path in ("/auth/login", "/lookup"):
        status, headers, _ = http(f"{base}{path}", cookie=cookie)
        cookies = [c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") or []]
        cookie = next((c for c in cookies if c.startswith("session=")), cookie)
        if status != 200 or cookie is None:
            raise RuntimeError(f"GET {path} answered {status} without a session cookie")
    status, headers, _ = http(f"{base}/lookup", cookie=cookie)
    if status != 200 or headers.get_all("Set-Cookie"):
        raise RuntimeError("the returning visitor's session still changes on each visit")
    return cookie


def api_token(database_url: str, tmp: Path, args: argparse.Namespace) -> str:
    """A bearer token of a new API client, made with the portal's own commands."""
    env = portal_env(database_url, tmp, args)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "users"]
    email = f"client-{secrets.token_hex(4)}@example.com"  # new each run (--reuse-db)
    subprocess.run(
        [
            *flask,
            "create",
            "--email",
            email,
            "--role",
            "customer",
            "--password",
            "Qing-Shan-Lu-Shui-2026",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    made = subprocess.run(
        [*flask, "token", "--email", email, "--name", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return made.stdout.strip().splitlines()[-1]


def check_lookups(base: str, token: str, invoices: int) -> list[str]:
    """A few real lookups through the form and the API must give the right finding; returns
    what was seen."""
    cases = [(1, "registered"), (invoices - 1, "registered"), (20, "pending_registry")]
    seen = []
    for n, finding in [*cases, (7, "unknown")]:
        fields = lookup_seed.lookup_fields(n)
        if finding == "unknown":  # a wrong check code: no proof of possession, no hint
            fields["check_code_last6"] = f"{(int(fields['check_code_last6']) + 1) % 10**6:06d}"
        status, _, html = http(f"{base}/lookup", fields)
        found = re.findall(r'class="finding finding-([a-z_]+)"', html)
        line = f"{fields['code']}-{fields['number']} -> {status} {found}"
        if status != 200 or found[:1] != [finding]:
            raise RuntimeError(f"lookup check failed: {line}, expected {finding}")
        seen.append(line)
        request = urllib.request.Request(
            f"{base}/api/v1/lookup",
            data=json.dumps(fields).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read())
        codes = [f["code"] for f in body["findings"]]
        if codes[:1] != [finding]:
            raise RuntimeError(f"API lookup check failed: {body}, expected {finding}")
        seen.append(f"  API -> {answer.status} {codes}")
    return seen


# --------------------------------------------------------------------------------------------
# Load.


def backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL backends connected to the benchmark's database (the portal's pool)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for (pid,) in rows]


def _proc_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2 :].split()
        total += (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _attribute(cpu: Counter, bench_db_cpu: float) -> Counter:
    """Fold cpu_breakdown's labels into ours (see Run.cpu)."""
    folded: Counter = Counter()
    for label, seconds in cpu.items():
        if label.startswith(("gunicorn", "wrk")):
            folded[label] += seconds
        elif label == "harness":  # this script, waiting for wrk
            continue
        elif label == "postgres (all)":
            folded["postgres (bench db)"] += min(bench_db_cpu, seconds)
            folded["others"] += max(0.0, seconds - bench_db_cpu)
        elif label == "redis-server (all)":
            folded["redis-server"] += seconds
        else:
            folded["others"] += seconds
    return folded


def wrk(
    target: Target,
    seconds: float,
    args: argparse.Namespace,
    groups: dict[str, set[int]],
    deadline: Deadline,
) -> Run:
    """Drive ``target`` with wrk for ``seconds``; the run and who used the CPU meanwhile."""
    deadline.check(f"before {target.name}")
    backends = backend_pids(args.database_url)
    argv = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{args.clients}",
        f"-d{seconds:g}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        target.url,
        "--",
        *target.lua_args,
    ]
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    before = CpuSnapshot.take()
    backends_before = _proc_cpu(backends)
    # wrk is reaped before the second snapshot: its CPU comes from the children's rusage.
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out, _ = proc.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise TimeoutError(f"wrk did not finish ({target.name})") from None
    except BaseException:  # interrupted: wrk is in a session of its own, stop it too
        proc.kill()
        proc.wait()
        raise
    after = CpuSnapshot.take()
    backends_after = _proc_cpu(backends)
    line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({target.name}, exit {proc.returncode}):\n{out}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(1.0)  # let the servers finish what wrk left queued, outside the next run
    cpu, busy, wall = cpu_breakdown(before, after, groups)
    cpu = _attribute(cpu, backends_after - backends_before)
    cpu["wrk"] += (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    ms = 1000.0
    return Run(
        target=target.name,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        mean_ms=data["mean"] / ms,
        p50_ms=data["p50"] / ms,
        p90_ms=data["p90"] / ms,
        p95_ms=data["p95"] / ms,
        p99_ms=data["p99"] / ms,
        max_ms=data["max"] / ms,
        socket_errors=sum(
            data[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
        ),
        unexpected=data["unexpected"],
        sample=data["sample"],
        cpu=cpu,
        busy=busy,
        wall=wall,
    )


def others_busy(groups: dict[str, set[int]], seconds: float = 1.0) -> float:
    """Cores used by processes other than the benchmark's over the next ``seconds``."""
    before = CpuSnapshot.take()
    time.sleep(seconds)
    cpu, _, wall = cpu_breakdown(before, CpuSnapshot.take(), groups)
    return sum(v for k, v in cpu.items() if k not in groups and k != "harness") / wall


def wait_for_quiet(groups: dict[str, set[int]], args: argparse.Namespace) -> None:
    """Wait up to ``--wait-quiet`` seconds for other processes to leave the cores alone."""
    if args.wait_quiet <= 0:
        return
    end = time.monotonic() + args.wait_quiet
    busy = others_busy(groups)
    while busy > BUSY_OTHERS and time.monotonic() < end:
        busy = others_busy(groups, 2.0)
    if busy > BUSY_OTHERS:
        print(f"  (still {busy:.2f} cores busy with other work; measuring anyway)", flush=True)


def measure(
    target: Target,
    args: argparse.Namespace,
    groups: dict[str, set[int]],
    deadline: Deadline,
    warm_up: bool,
) -> Run:
    wait_for_quiet(groups, args)
    if warm_up and args.warmup > 0:
        wrk(target, args.warmup, args, groups, deadline)
    run = wrk(target, args.duration, args, groups, deadline)
    print_run(run)
    return run


# --------------------------------------------------------------------------------------------
# Report.


# The stack whose CPU per request is summed. Redis is left out: the server is shared with
# whatever else runs on the machine, so its CPU cannot be told apart (it is printed, though).
STACK = (
    "gunicorn hello",
    "gunicorn portal",
    "gunicorn form",
    "gunicorn floor",
    "wrk",
    "postgres (bench db)",
)
OURS = (*STACK, "redis-server")
BUSY_OTHERS = 0.25  # cores used by other processes above which a run is flagged as disturbed


def print_run(run: Run) -> None:
    print(
        f"  {run.target:<14} {run.rate:8,.0f} req/s  p50 {run.p50_ms:6.2f}  p95 "
        f"{run.p95_ms:6.2f}  p99 {run.p99_ms:6.2f}  max {run.max_ms:7.2f} ms  "
        f"errors {run.errors}  ({run.requests:,} in {run.seconds:.1f} s)",
        flush=True,
    )
    cores = ", ".join(
        f"{label} {run.cpu[label] / run.wall:.2f}" for label in (*OURS, "others") if run.cpu[label]
    )
    print(f"  {'':<14} CPU cores: machine {run.busy / run.wall:.2f} = {cores}", flush=True)
    if run.requests:
        per_request = ", ".join(
            f"{label} {run.cpu[label] / run.requests * 1000:.3f}"
            for label in OURS
            if run.cpu[label] / run.requests >= 5e-6
        )
        print(f"  {'':<14} CPU ms per request: {per_request}", flush=True)
    if run.cpu["others"] / run.wall > BUSY_OTHERS:
        print(
            f"  {'':<14} ! other processes used {run.cpu['others'] / run.wall:.2f} cores "
            "meanwhile: this run is disturbed",
            flush=True,
        )
    if run.errors and run.sample:
        print(f"  {'':<14} first unexpected response: {run.sample[:160]}", flush=True)


def cpu_per_request(runs: list[Run]) -> float:
    """CPU ms of the stack (server, wrk, the benchmark's PostgreSQL backends) per request, over
    ``runs``."""
    requests = sum(r.requests for r in runs)
    return sum(sum(r.cpu[label] for label in STACK) for r in runs) / requests * 1000


def pooled(runs: list[Run]) -> tuple[float, float, int]:
    """(req/s over all runs, worst p99 ms, errors) of one target's runs."""
    requests = sum(r.requests for r in runs)
    seconds = sum(r.seconds for r in runs)
    return requests / seconds, max(r.p99_ms for r in runs), sum(r.errors for r in runs)


def verdict(runs: list[Run], args: argparse.Namespace) -> tuple[bool, list[str]]:
    hellos = [r for r in runs if r.target == "hello"]
    hello_rate, hello_p99, hello_errors = pooled(hellos)
    hello_cpu = cpu_per_request(hellos)
    lines = [
        f"hello (baseline): {hello_rate:,.0f} req/s, p99 {hello_p99:.2f} ms, errors {hello_errors}"
        f"; stack CPU {hello_cpu:.2f} ms per request"
    ]
    ok = hello_errors == 0
    floor_rate, floor_p99, _ = pooled([r for r in runs if r.target == "form floor"])
    lines.append(
        f"form floor (Flask + session + Flask-WTF token, made for each request): "
        f"{floor_rate:,.0f} req/s = {floor_rate / hello_rate:.0%} of hello, p99 {floor_p99:.2f} ms"
    )
    lookup_floor, lookup_floor_p99, _ = pooled([r for r in runs if r.target == "lookup floor"])
    lines.append(
        f"lookup floor (the portal's libraries doing the least a lookup needs: "
        f"bench/lookup_floor_app.py): {lookup_floor:,.0f} req/s = "
        f"{lookup_floor / hello_rate:.0%} of hello, p99 {lookup_floor_p99:.2f} ms"
    )
    for name in (*PAGE_TARGETS, *LOOKUP_TARGETS):
        mine = [r for r in runs if r.target == name]
        rate, p99, errors = pooled(mine)
        ratio = rate / hello_rate
        p50 = statistics.median(r.p50_ms for r in mine)
        figures = (
            f"{name}: {rate:,.0f} req/s = {ratio:.0%} of hello, p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms, errors {errors}"
        )
        if name in PAGE_TARGETS:
            passed = ratio >= TARGET_RATIO and p99 < TARGET_P99_MS and errors == 0
            ok = ok and passed
            figures += (
                f" (targets ≥ {TARGET_RATIO:.0%}, p99 < {TARGET_P99_MS:.0f} ms): "
                f"{'PASS' if passed else 'FAIL'}"
            )
        else:
            passed = ratio >= LOOKUP_RATIO and p99 < LOOKUP_P99_MS and errors == 0
            ok = ok and passed
            figures += (
                f" (targets ≥ {LOOKUP_RATIO:.0%}, p99 < {LOOKUP_P99_MS:.0f} ms): "
                f"{'PASS' if passed else 'FAIL'}"
            )
        lines.append(figures)
        mine_cpu = cpu_per_request(mine)
        lines.append(
            f"{'':<14}stack CPU {mine_cpu:.2f} ms per request: the ratio on an otherwise idle, "
            f"CPU-bound machine would be about {hello_cpu / mine_cpu:.0%}"
        )
    disturbed = [r for r in runs if r.cpu["others"] / r.wall > BUSY_OTHERS]
    if disturbed:
        worst = max(r.cpu["others"] / r.wall for r in disturbed)
        lines.append(
            f"! {len(disturbed)} of {len(runs)} runs shared the machine with other work (up to "
            f"{worst:.2f} cores): rates and latencies are lower than on a quiet machine"
        )
    return ok, lines


# --------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds of the same load before round 1's runs"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both apps)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (both apps)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="every target this many times (interleaved)"
    )
    parser.add_argument("--database", default=lookup_seed.DEFAULT_DB, help="portal_bench_*")
    parser.add_argument("--reuse-db", action="store_true", help="keep a seeded database")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="before each run, wait up to this many seconds for other processes to go idle",
    )
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds for everything")
    args = parser.parse_args()
    if not args.database.startswith("portal_bench_"):
        parser.error("--database must be named portal_bench_*")
    return args


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not on PATH (Debian: apt-get install wrk)")
    deadline = Deadline(args.deadline)
    tmp = Path(tempfile.mkdtemp(prefix="portal-lookup-bench-"))
    children = Children()
    redis = Redis.from_url(REDIS_URL)
    # A database this run creates is dropped at the end, unless asked to keep it.
    drop_db = not (args.keep_db or args.reuse_db)

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    started = time.monotonic()
    status = 1
    try:
        redis.ping()
        redis.flushdb()
        compile_catalogs()  # production settings refuse to start without them
        print(
            f"bench/lookup.py: {args.invoices:,} invoices in PostgreSQL, {args.clients} clients, "
            f"gunicorn {args.workers} workers × {args.threads} threads "
            f"({'sync' if args.threads == 1 else 'gthread'}), {args.duration:g} s runs after "
            f"{args.warmup:g} s warm-up, {os.cpu_count()} cores",
            flush=True,
        )
        database_url = args.database_url = prepare_database(args)
        print(f"prewarmed {prewarm(database_url):,.0f} MB of tables and indexes", flush=True)

        hello_port, portal_port, form_port, floor_port = (free_port() for _ in range(4))
        hello = children.start(
            gunicorn_argv("bench.hello_app:app", hello_port, args),
            dict(os.environ),
            tmp / "hello.log",
        )
        portal = children.start(
            gunicorn_argv("bench.lookup_app:app", portal_port, args),
            portal_env(database_url, tmp, args),
            tmp / "portal.log",
        )
        hello_url = f"http://127.0.0.1:{hello_port}"
        portal_url = f"http://127.0.0.1:{portal_port}"
        for name, url, proc in (("hello", hello_url, hello), ("portal", portal_url, portal)):
            wait_until(
                lambda url=url, proc=proc: proc.poll() is None and http(url, timeout=2)[0] < 500,
                timeout=60,
                what=f"gunicorn ({name})",
            )
        # The reference form page, as large as the portal's lookup page.
        page_bytes = len(http(f"{portal_url}/lookup")[2].encode())
        form = children.start(
            gunicorn_argv("bench.form_app:app", form_port, args),
            {**os.environ, "FORM_PAGE_BYTES": str(page_bytes)},
            tmp / "form.log",
        )
        form_url = f"http://127.0.0.1:{form_port}"
        wait_until(
            lambda: form.poll() is None and http(f"{form_url}/lookup", timeout=2)[0] == 200,
            timeout=60,
            what="gunicorn (form)",
        )
        # The reference lookup, its answer as large as the portal's.
        answer_bytes = len(http(f"{portal_url}/lookup", lookup_seed.lookup_fields(1))[2].encode())
        floor = children.start(
            gunicorn_argv("bench.lookup_floor_app:app", floor_port, args),
            {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": REDIS_URL,
                "RATELIMIT_LOOKUP_IP": HUGE_LIMIT,
                "FLOOR_PAGE_BYTES": str(answer_bytes),
            },
            tmp / "floor.log",
        )
        floor_url = f"http://127.0.0.1:{floor_port}"
        wait_until(
            lambda: (
                floor.poll() is None
                and http(f"{floor_url}/lookup", lookup_seed.lookup_fields(1), timeout=2)[0] == 200
            ),
            timeout=60,
            what="gunicorn (lookup floor)",
        )
        groups = {
            "gunicorn hello": {hello.pid},
            "gunicorn portal": {portal.pid},
            "gunicorn form": {form.pid},
            "gunicorn floor": {floor.pid},
        }

        cookie = returning_cookie(portal_url)
        token = api_token(database_url, tmp, args)
        for line in check_lookups(portal_url, token, args.invoices):
            print(f"  check: {line}", flush=True)

        targets = [
            Target("hello", f"{hello_url}/", ["get", "hello"]),
            Target("form floor", f"{form_url}/lookup", ["get", 'name="csrf_token"']),
            Target("GET /lookup", f"{portal_url}/lookup", ["get", 'name="number"']),
            Target("GET, returning", f"{portal_url}/lookup", ["get", 'name="number"', cookie]),
            Target(
                "POST /lookup",
                f"{portal_url}/lookup",
                ["post", 'class="finding finding-registered"', str(args.invoices)],
            ),
            Target(
                "lookup floor",
                f"{floor_url}/lookup",
                ["post", 'class="finding finding-registered"', str(args.invoices)],
            ),
            Target(
                "POST /api/v1/lookup",
                f"{portal_url}/api/v1/lookup",
                ["api", '"code":"registered"', str(args.invoices), token],
            ),
        ]
        runs: list[Run] = []
        for round_no in range(1, args.rounds + 1):
            print(f"\nround {round_no}:", flush=True)
            for target in targets:
                runs.append(measure(target, args, groups, deadline, warm_up=round_no == 1))
        print("\nclosing baseline:", flush=True)
        runs.append(measure(targets[0], args, groups, deadline, warm_up=False))

        with psycopg.connect(database_url) as conn:
            logged = conn.execute(
                "SELECT count(*) FROM lookup_events WHERE finding = 'registered'"
            ).fetchone()[0]
        print(f"\nlookup_events rows with finding 'registered': {logged:,}")

        ok, lines = verdict(runs, args)
        print("\nresult:")
        for line in lines:
            print(f"  {line}")
        command = " ".join([".venv/bin/python", "bench/lookup.py", *sys.argv[1:]])
        print(f"\ncommand: {command}")
        print(f"total time {time.monotonic() - started:.0f} s")
        print("PASS" if ok else "FAIL: below a lookup bar (DESIGN.md §8, issue 17)")
        status = 0 if ok else 1
    except KeyboardInterrupt as stop:
        print(f"\ninterrupted ({stop}); cleaning up", file=sys.stderr)
        status = 130
    except Exception as error:
        traceback.print_exc()
        print(f"\nfailed: {error!r}; logs in {tmp}", file=sys.stderr)
        status = 2
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        children.stop_all()
        try:
            redis.flushdb()
        except Exception as error:
            print(f"could not flush {REDIS_URL}: {error!r}", file=sys.stderr)
        if drop_db:
            try:
                drop_database(args.database)
            except Exception as error:
                print(f"could not drop {args.database}: {error!r}", file=sys.stderr)
        if status in (0, 1):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}", file=sys.stderr)
        with contextlib.suppress(Exception):
            redis.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
