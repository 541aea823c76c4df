"""Instructions a lookup costs, counted by valgrind's callgrind: the same count on a busy
machine as on a quiet one, so two versions of the code can be compared where CPU-time figures
drift by more than the change.

    .venv/bin/python bench/lookup_instructions.py --database portal_bench_lookup
        [--target api|post|page|returning] [--requests 200]

Runs ``bench/profile_lookup.py``'s set-up (production settings, the seeded database, Redis
database 10, the WSGI app called as gunicorn calls it) in two child processes under callgrind,
one making 100 requests and one 100 + ``--requests``, after the same warm-up; the difference of
their totals over ``--requests`` is what one request costs, start-up and warm-up cancelled
out. Needs ``valgrind`` (Debian package ``valgrind``); takes a minute or two.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASE = 100  # requests in both children: what they share cancels out


def child(target: str, database: str, requests: int) -> None:
    """Make ``requests`` requests of ``target`` after a warm-up (run under callgrind)."""
    from bench import lookup_seed
    from bench import profile_lookup as profile
    from bench.lookup import api_token

    with tempfile.TemporaryDirectory(prefix="lookup-instructions-") as folder:
        url = f"postgresql://postgres@127.0.0.1:5432/{database}"
        app = profile._app(url, Path(folder))
        token = api_token(url, Path(folder), argparse.Namespace()) if target == "api" else None
        cookie = None
        if target == "returning":  # as bench/lookup.py's returning_cookie, in-process
            client = app.test_client(use_cookies=False)
            for path in ("/auth/login", "/lookup"):
                answer = client.get(path, headers={"Cookie": cookie} if cookie else {})
                cookie = answer.headers.get("Set-Cookie", cookie or "").split(";", 1)[0]
        kind = "page" if target == "returning" else target
        registered = [n for n in range(1, 5000) if n % lookup_seed.PENDING_EVERY]
        for n in registered[:50]:
            assert profile._call(app, profile._environ(kind, n, token, cookie)).startswith("200")
        for i in range(requests):
            environ = profile._environ(kind, registered[50 + i % 4000], token, cookie)
            assert profile._call(app, environ).startswith("200")


def counted(target: str, database: str, requests: int) -> int:
    """Instructions callgrind counted in a child making ``requests`` requests."""
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        str(requests),
        "--target",
        target,
        "--database",
        database,
    ]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"the child failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="portal_bench_lookup")
    parser.add_argument("--target", choices=("api", "post", "page", "returning"), default="api")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.target, args.database, args.child)
        return 0
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not on PATH (Debian: apt-get install valgrind)")
    with ThreadPoolExecutor(2) as pool:  # one child per core
        few, many = pool.map(
            lambda n: counted(args.target, args.database, n), (BASE, BASE + args.requests)
        )
    per_request = (many - few) / args.requests
    print(f"{args.target}: {per_request / 1e6:.2f} M instructions a request ({args.requests})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
