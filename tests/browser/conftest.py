"""Browser tests: gunicorn serving the app, Debian's Chromium driven by Playwright.

They run when /usr/bin/chromium (or CHROMIUM) is an executable; without one they are skipped
and say why, and with REQUIRE_BROWSER=1 (CI) a missing browser is a failure, not a skip.
Screenshots go to BROWSER_ARTIFACTS (default tests/screenshots/).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal.support.redisserver import free_port
from tests.conftest import ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ROOT / "tests" / "screenshots"))
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            # One worker runs them all (``--dist loadgroup``): one browser, one live server.
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def chromium():
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        why = f"no Chromium: {CHROMIUM} is not an executable (scripts/setup-system installs it)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from playwright.sync_api import expect, sync_playwright

    # How long a waiting check waits for the page (not a bound on how fast it must be): on a
    # 2-core CI machine the other test worker may hold both cores while a form is submitted,
    # and Playwright's 5 s default once ran out before a report's answer came.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


_GENEROUS = "10000 per minute"
_ADDRESS_LIMITS = (
    "RATELIMIT_LOGIN",
    "RATELIMIT_REGISTER",
    "RATELIMIT_LOOKUP_IP",
    "RATELIMIT_PASSWORD_RESET",
)


@pytest.fixture(scope="session")
def live_server(shared_database_url, redis_url, registry_server, tmp_root):
    """gunicorn serving the app on a free port, on this worker's shared database and Redis
    (a test using it gets that database as its ``database_url``, see tests/conftest.py)."""
    port = free_port()
    env = {
        **os.environ,
        "PORTAL_ENV": "testing",
        "TEST_DATABASE_URL": shared_database_url,
        "TEST_REDIS_URL": redis_url,
        "REGISTRY_URL": registry_server.url,
        "UPLOAD_DIR": str(tmp_root / "live-uploads"),
        "PORTAL_INSTANCE_PATH": str(tmp_root / "live-instance"),
        # Every journey signs in, registers, looks up and reports from 127.0.0.1, one after
        # another in a minute or two: the per-address limits would refuse the later ones by
        # the order the tests happen to run in. The limits are the test client's to test
        # (tests/test_auth.py, tests/test_security.py, tests/test_lookup.py).
        **{name: _GENEROUS for name in _ADDRESS_LIMITS},
    }
    log = open(tmp_root / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    else:
        proc.kill()
    if proc.poll() is not None:
        log.close()
        pytest.fail("gunicorn did not start:\n" + (tmp_root / "gunicorn.log").read_text())
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=15)
    log.close()


@pytest.fixture
def page_factory(chromium, app):
    """New isolated browser pages (phone or desktop); ``app`` empties the tables first."""
    contexts = []

    def make(viewport=PHONE, **kwargs):
        context = chromium.new_context(viewport=viewport, locale="zh-CN", **kwargs)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.console_errors = errors
        return page

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_fits(page, width: int) -> None:
    """Nothing sticks out sideways: the page is fully usable at this width."""
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"page is {scroll_width}px wide at a {width}px viewport"
