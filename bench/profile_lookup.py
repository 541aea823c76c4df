"""Where a lookup's CPU goes, in-process: cProfile over N requests through the WSGI app.

    .venv/bin/python bench/profile_lookup.py --database portal_bench_lookup [--requests 400]
        [--target post|api|page|returning] [--top 40] [--timer wall|cpu]

Runs the portal exactly as ``bench/lookup.py`` configures it (``portal_env``: production
settings, the seeded database of ``bench/lookup_seed.py``, Redis database 10) and calls its
WSGI entry point as a server would, with environs built beforehand (werkzeug's
``EnvironBuilder``), so neither a server, a load generator nor a test client shares the
profile. It prints the mean time per request (wall clock; with ``--timer cpu``, this process's
CPU time, so waits on PostgreSQL and Redis do not count), the share of it spent under each stage
(rendering, the lookup service, the limiter, the hooks), the time of each package (the portal,
Flask, Jinja, WTForms, SQLAlchemy, psycopg, redis, ...) as a share of the whole, then the
functions with the most time of their own and the most time below them.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from werkzeug.test import EnvironBuilder  # noqa: E402

from bench import lookup_seed  # noqa: E402
from bench._common import compile_catalogs  # noqa: E402
from bench.lookup import api_token, portal_env  # noqa: E402


def _app(database_url: str, tmp: Path):
    compile_catalogs()  # production settings refuse to start without them
    os.environ.update(portal_env(database_url, tmp, argparse.Namespace()))
    from bench.lookup_app import app

    return app


def _environ(target: str, n: int, token: str | None, cookie: str | None) -> dict:
    """The WSGI environ of one request, as a server would pass it (built before profiling)."""
    headers = {"Cookie": cookie} if cookie else {}
    if target == "post":
        builder = EnvironBuilder(
            path="/lookup", method="POST", data=lookup_seed.lookup_fields(n), headers=headers
        )
    elif target == "api":
        headers["Authorization"] = f"Bearer {token}"
        builder = EnvironBuilder(
            path="/api/v1/lookup", method="POST", json=lookup_seed.lookup_fields(n), headers=headers
        )
    else:
        builder = EnvironBuilder(path="/lookup", headers=headers)
    try:
        return builder.get_environ()
    finally:
        builder.close()


def _call(app, environ: dict) -> str:
    """Call the app as gunicorn does: start_response, then read the whole body."""
    seen = []

    def start_response(status, _headers, _exc_info=None):
        seen.append(status)

    body = app(environ, start_response)
    try:
        for _chunk in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close:
            close()
    return seen[0]


# Where a request's time goes, by the function everything of a stage runs under.
_STAGES = {
    "rendering the page (render_template)": ("flask/templating.py", "render_template"),
    "the lookup service": ("portal/services/lookup.py", "lookup"),
    "the API token's user": ("portal/services/accounts.py", "user_for_api_token"),
    "Flask-Limiter's checks": ("flask_limiter/_extension.py", "_check_request_limit"),
    "before-request hooks": ("flask/app.py", "preprocess_request"),
    "after-request hooks": ("flask/app.py", "process_response"),
}


def _package(filename: str) -> str:
    path = filename.replace("\\", "/")
    if "/portal/" in path and "site-packages" not in path:
        return "portal"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if path.startswith("<") or path == "~":
        return "builtins"
    return "stdlib"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="portal_bench_lookup")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--target", choices=("post", "api", "page", "returning"), default="post")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--timer",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: waits on PostgreSQL and Redis count; cpu: only this process's CPU time",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-lookup-") as folder:
        url = f"postgresql://postgres@127.0.0.1:5432/{args.database}"
        app = _app(url, Path(folder))
        token = api_token(url, Path(folder), argparse.Namespace()) if args.target == "api" else None
        cookie = None
        if args.target == "returning":  # bench/lookup.py's returning_cookie, in-process
            client = app.test_client(use_cookies=False)
            for path in ("/auth/login", "/lookup"):
                answer = client.get(path, headers={"Cookie": cookie} if cookie else {})
                cookie = answer.headers.get("Set-Cookie", cookie or "").split(";", 1)[0]
        target = "page" if args.target == "returning" else args.target
        registered = [n for n in range(1, 5000) if n % lookup_seed.PENDING_EVERY]
        for n in registered[:50]:  # warm the pools, caches and templates
            assert _call(app, _environ(target, n, token, cookie)).startswith("200")
        environs = [
            _environ(target, registered[50 + i % 4000], token, cookie) for i in range(args.requests)
        ]
        profile = cProfile.Profile(time.process_time if args.timer == "cpu" else time.perf_counter)
        clock = time.process_time if args.timer == "cpu" else time.perf_counter
        started = clock()
        profile.enable()
        for environ in environs:
            status = _call(app, environ)
            assert status.startswith("200"), status
        profile.disable()
        elapsed = clock() - started
    print(f"{args.target}: {args.requests} requests, {elapsed / args.requests * 1000:.2f} ms each")
    stats = pstats.Stats(profile)
    print("share of the time spent under:")
    for label, (file_end, function) in _STAGES.items():
        below = sum(
            cum
            for (filename, _line, name), (_cc, _nc, _own, cum, _callers) in stats.stats.items()
            if filename.replace("\\", "/").endswith(file_end) and name == function
        )
        print(f"  {label:34} {below / elapsed * 100:5.1f} %")
    by_package: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():
        by_package[_package(filename)] += own
        total += own
    print("own time by package:")
    for name, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {name:28} {seconds / total * 100:5.1f} %")
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
