"""Fuzzing (issue 10): random input to every form and API endpoint must never get a 500.

1. CSRF everywhere, generated from the url_map. Every rule that accepts POST outside ``/api/``
   is posted to without a CSRF token, and with another session's token (anonymous, as a
   customer, as staff), with data that would change something: the answer must be the CSRF
   error page (400) and no row may change. The same request with the right token must then
   reach the view (for the role it is meant for: not 400/404/405), which proves the URL was
   filled with real objects. A POST rule the test cannot fill fails the test (``_fill``).
   The API is CSRF-exempt by design; there, a browser session must never authenticate.
2. Hypothesis posts random values (unicode, control characters, huge, empty, look-alike
   digits, out-of-range numbers, random extra and repeated fields, random files and file
   names) with a valid CSRF token to every form, and random query strings and path segments
   to the GET pages. No response may be a 5xx, no streamed body may fail half-way.
3. Schemathesis drives ``/api/v1`` from its own OpenAPI document with a staff bearer token
   (positive and negative generation), plus mostly-valid bodies that reach the 200/201/409
   answers: ``not_a_server_error``, ``status_code_conformance`` and
   ``response_schema_conformance``.

Bounded for CI (about 30 s): ``FUZZ_EXAMPLES`` (default 40) examples per form, half that per
GET page, path, staff decision and API operation; failures are not shrunk unless
``FUZZ_SHRINK=1``; ``FUZZ_DERANDOMIZE=1`` makes runs repeatable. A watchdog dumps every
thread's stack and ends the run if one test hangs. Rate limits and the per-account lockout are
raised (``FUZZ_SETTINGS``) so that fuzzing reaches the views; SQLite skips fsync.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import functools
import io
import logging
import os
import re
import traceback
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

import jinja2
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from portal import create_app
from portal.extensions import db
from tests.conftest import TEST_TOTP_SECRET, AuthActions, _empty_all_tables, csrf_token_from

# ------------------------------------------------------------------------------- settings

# Hypothesis warns when it prints a failing example over 40 kB (our huge values). Under the
# suite's filterwarnings=error that warning would replace the failure it reports.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
SMALL = max(1, EXAMPLES // 2)  # per GET page, per path template, per API operation and mode
# One test running longer than this is taken for a hang: every thread's stack, then exit.
HANG_SECONDS = float(os.environ.get("FUZZ_HANG_SECONDS", 300 * max(1, EXAMPLES / 40)))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("FUZZ_DERANDOMIZE") == "1",
    # Shrinking a failure can take minutes; CI reports the failing example as found (with the
    # blob for @reproduce_failure). FUZZ_SHRINK=1 shrinks it to a minimal one.
    phases=[p for p in Phase if os.environ.get("FUZZ_SHRINK") == "1" or p is not Phase.shrink],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the app and its clients are set up per test
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
    print_blob=True,
)
FEW = settings(FUZZ, max_examples=SMALL)

UNLIMITED = "100000 per minute"
FUZZ_SETTINGS = {
    "RATELIMIT_LOGIN": UNLIMITED,
    "RATELIMIT_REGISTER": UNLIMITED,
    "RATELIMIT_LOOKUP_IP": UNLIMITED,
    "RATELIMIT_LOOKUP_USER": UNLIMITED,
    "RATELIMIT_CASE_CREATE": UNLIMITED,
    "RATELIMIT_CASE_ATTEMPTS": UNLIMITED,
    "RATELIMIT_UPLOAD": UNLIMITED,
    "RATELIMIT_DATA_EXPORT": UNLIMITED,
    "LOOKUPS_PER_INVOICE_PER_DAY": 1_000_000,
    "LOGIN_FAILURES_BEFORE_LOCK": 1_000_000,  # the per-account lockout is a rate limit too
    "LOGIN_ACCOUNT_SOFT_LIMIT": 1_000_000,
    "RATELIMIT_PASSWORD_RESET": UNLIMITED,
    # Staff pages that ask the registry get a quick "unavailable" instead of waiting.
    "REGISTRY_URL": "http://127.0.0.1:9",
    "REGISTRY_CONNECT_TIMEOUT": 0.2,
    "REGISTRY_READ_TIMEOUT": 0.2,
}

PASSWORD = "Gao-Shan-Liu-Shui-42"
CSRF_MESSAGE = "表单已过期或来源不明"  # the CSRF error page (zh_CN, the default language)
BEIJING_CODE = "011001900111"
BUYER_TAX_ID = "911101017967003199"
SELLER_TAX_ID = "91320621MA1MRHG205"
CHECK_CODE = "65431824771847114698"
EMAILS = {
    "customer": "kehu@example.com",
    "reviewer": "shenhe@example.com",
    "supervisor": "zhuguan@example.com",
    "admin": "guanli@example.com",
}
STAFF = ("reviewer", "supervisor", "admin")


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def watchdog():
    """A hang must not stall CI: dump every thread's stack and exit after HANG_SECONDS."""
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


class _SharedBytecode(jinja2.BytecodeCache):
    """Templates compiled once for all of this module's apps (each test builds its own app).
    Keyed by name and source checksum, so an edited template is compiled again."""

    def __init__(self):
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = _SharedBytecode()


class _Crashes(logging.Handler):
    """Keeps the traceback of every unhandled error the app logs (portal.errors)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.tracebacks: list[str] = []

    def emit(self, record):
        if record.exc_info:
            self.tracebacks.append("".join(traceback.format_exception(*record.exc_info)))


def _no_fsync(dbapi_connection, _record):
    dbapi_connection.execute("PRAGMA synchronous = OFF")


@pytest.fixture
def app(app_factory, tmp_path):
    """This module's app: the suite's database and Redis, rate limits out of the way, mail
    written to a folder of the test's own."""
    app = app_factory(**FUZZ_SETTINGS, MAIL_URL=f"file://{tmp_path / 'mail'}")
    with app.app_context():
        if db.engine.dialect.name == "sqlite":  # durability is not under test: skip fsync
            event.listen(db.engine, "connect", _no_fsync)
        _empty_all_tables()
        from portal.queue import redis_connection

        redis_connection().flushdb()
    app.jinja_env.bytecode_cache = TEMPLATES
    app.fuzz_crashes = _Crashes()
    app.logger.addHandler(app.fuzz_crashes)
    yield app
    app.logger.removeHandler(app.fuzz_crashes)


def check(app, response, what: str, allowed: tuple = ()):
    """No 5xx, no failure while the body streams (CSV exports). (How long a request takes is
    the benches' business, not a test's: no timed assertion.)"""
    response.get_data()
    if response.status_code >= 500 and response.status_code not in allowed:
        crash = app.fuzz_crashes.tracebacks[-1] if app.fuzz_crashes.tracebacks else "(no log)"
        raise AssertionError(f"{what[:2000]} -> {response.status_code}\n{crash}")
    return response


def send(app, client, method: str, url: str, allowed: tuple = (), **kwargs):
    response = client.open(url, method=method, **kwargs)
    data = kwargs.get("data") or kwargs.get("query_string") or ""
    return check(app, response, f"{method} {url} {data!r}", allowed)


# --------------------------------------------------------------------- objects to point at


def tiny_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "PNG")
    return out.getvalue()


def uscc(first17: str) -> str:
    """A valid 统一社会信用代码 from its first 17 characters."""
    from portal.domain.taxid import uscc_check_character

    return first17 + uscc_check_character(first17)


def claim_data(**overrides) -> dict:
    values = {"code": BEIJING_CODE, "number": "12345678", "issue_date": date(2026, 5, 1)}
    return {**values, **overrides}


def open_case(customer_id: int, *, claim_by: int | None = None) -> str:
    """A case of the customer (needs an app context); claimed by ``claim_by`` if given."""
    from portal.models import User
    from portal.services import cases, review

    customer = db.session.get(User, customer_id)
    case = cases.open_case(cases.parse_claim(claim_data()), customer=customer)
    if claim_by is not None:
        review.claim(case, db.session.get(User, claim_by))
    return case.reference


@dataclass(frozen=True)
class Fresh:
    """Objects a request may use up (withdraw, rate, accept), made anew when needed."""

    case_ref: str
    other_ref: str  # the same invoice: the two can be merged
    rating_token: str
    invitation_token: str
    link_id: int
    dead_submission_id: int
    invoice_key: str
    reset_token: str
    verify_token: str


@dataclass(frozen=True)
class World:
    app: object
    ids: dict  # role -> user id
    upload_id: int
    first: Fresh

    def fresh(self) -> Fresh:
        return make_fresh(self.app, self.ids)


_serials = iter(range(10_000_000, 99_999_999))


def make_fresh(app, ids: dict) -> Fresh:
    from portal.mail import make_rating_token, new_nonce
    from portal.models import Case, Submission, SubmissionState, User, utcnow
    from portal.services import buyers
    from tests import factories

    with app.app_context():
        customer = db.session.get(User, ids["customer"])
        admin = db.session.get(User, ids["admin"])
        case_ref, other_ref = open_case(customer.id), open_case(customer.id)
        rated = db.session.scalar(select(Case).where(Case.reference == other_ref))
        rated.rating_nonce = nonce = new_nonce()  # as if its resolution mail had been sent
        db.session.commit()
        rating_token = make_rating_token(rated.id, nonce, app.config["SECRET_KEY"], utcnow())
        serial = next(_serials)
        _link, invitation = buyers.invite(
            admin, EMAILS["customer"], uscc(f"911101010{serial:08d}"), "北京示例科技有限公司"
        )
        link = buyers.request_link(customer, uscc(f"911101020{serial:08d}"), "江苏示例", "财务")
        [invoice] = factories.issued(1)
        dead = db.session.scalar(select(Submission).where(Submission.invoice_id == invoice.id))
        dead.state, dead.last_error_kind = SubmissionState.DEAD, "rejected"
        db.session.commit()
        from portal.services import account_links

        reset = account_links.reset_token(customer)
        verify = account_links.verification_token(customer)
        return Fresh(
            case_ref,
            other_ref,
            rating_token,
            invitation,
            link.id,
            dead.id,
            invoice.key,
            reset,
            verify,
        )


@pytest.fixture
def world(app) -> World:
    from portal.models import Case, User
    from portal.services import accounts, evidence

    with app.app_context():
        from portal.models import utcnow
        from portal.support import crypto

        ids = {"customer": accounts.register_customer(EMAILS["customer"], PASSWORD).id}
        db.session.get(User, ids["customer"]).email_verified_at = utcnow()
        for role in STAFF:
            ids[role] = accounts.create_user(EMAILS[role], PASSWORD, role).id
        # As conftest does.
        db.session.get(User, ids["admin"]).totp_secret = crypto.encrypt_secret(TEST_TOTP_SECRET)
        db.session.commit()
    first = make_fresh(app, ids)
    with app.app_context():
        case = db.session.scalar(select(Case).where(Case.reference == first.case_ref))
        customer = db.session.get(User, ids["customer"])
        upload = evidence.add_upload(case, customer, "fapiao.png", tiny_png())
        return World(app, ids, upload.id, first)


def signed_in(app, role: str | None):
    """A new test client signed in through the real forms (None: anonymous), and its token.

    Admins give their one-time code too (conftest's AuthActions does, with TEST_TOTP_SECRET).
    ``pending-admin``: the admin's password was right, the one-time code is still owed.
    """
    client = app.test_client()
    actions = AuthActions(client)
    if role == "pending-admin":
        answer = actions.post_form("/auth/login", {"email": EMAILS["admin"], "password": PASSWORD})
        assert answer.headers["Location"].endswith("/auth/2fa")
        return client, csrf_token_from(client.get("/auth/2fa").get_data(as_text=True))
    if role is not None:
        answer = actions.login(EMAILS[role], PASSWORD)
        assert answer.status_code == 302, f"could not sign in as {role}"
        assert "/auth/" not in answer.headers["Location"], f"could not sign in as {role}"
    # A signed-out page with a token form (the signed-out home page is sessionless).
    page = "/" if role is not None else "/auth/login"
    return client, csrf_token_from(client.get(page).get_data(as_text=True))


# ============================================================================ 1. CSRF

STAFF_ACTIONS = (
    "claim",
    "release",
    "assign",
    "approve",
    "confirm",
    "reject",
    "request_info",
    "reply",
    "merge",
    "close_registered",
    "withdraw_approval",
    "priority",
    "registry-refresh",
)
EVERYONE = (None, "customer", "admin")


@dataclass(frozen=True)
class Post:
    """A POST that would change something if CSRF protection let it through.

    ``roles``: who posts it (None: anonymous). ``owner``: the role for whom, with the right
    token, the view must really be reached (not 404): proof that the URL names real objects.
    """

    url: str
    data: object  # a dict, or a function of the client giving one
    roles: tuple
    owner: str | None


def approval() -> dict:
    return {
        "code": BEIJING_CODE,
        "number": "12345678",
        "issue_date": "2026-05-01",
        "amount": "100.00",
        "tax": "6.00",
        "total": "106.00",
        "buyer_tax_id": BUYER_TAX_ID,
        "buyer_name": "北京示例科技有限公司",
        "seller_tax_id": SELLER_TAX_ID,
        "check_code": CHECK_CODE,
    }


def _current_code(_client) -> dict:
    import pyotp

    return {"code": pyotp.TOTP(TEST_TOTP_SECRET).now()}


def _setup_code(client) -> dict:
    import pyotp

    page = client.get("/auth/2fa/setup").get_data(as_text=True)
    secret = re.search(r'class="mono break"[^>]*>([A-Z2-7]{16,})<', page).group(1)
    return {"code": pyotp.TOTP(secret).now()}


def _fill(world: World, w: Fresh, rule: str) -> list[Post] | None:
    """How to post to ``rule`` for real; None for a rule this test does not know yet."""
    png = ("files", tiny_png)
    report = {**claim_data(issue_date="2026-05-01"), "contact_preference": "email"}
    decisions = {
        **approval(),
        "reviewer_id": str(world.ids["reviewer"]),
        "reason_code": "other",
        "text": "请补充",
        "into": w.case_ref,
    }
    staff_user = {"email": "neu-staff@example.com", "role": "reviewer", "password": PASSWORD}
    invite = {"email": "x@example.com", "buyer_tax_id": BUYER_TAX_ID, "buyer_name": "北京"}
    lookup = {"code": BEIJING_CODE, "number": "12345678", "issue_date": "2026-05-01"}
    table = {
        "/auth/account": [Post("/auth/account", {}, ("customer", "admin"), "customer")],
        "/lookup/scan": [Post("/lookup/scan", {"file": png}, EVERYONE, None)],
        "/auth/2fa": [Post("/auth/2fa", _current_code, ("pending-admin",), "pending-admin")],
        "/auth/2fa/setup": [Post("/auth/2fa/setup", _setup_code, ("reviewer",), "reviewer")],
        "/auth/login": [
            Post("/auth/login", {"email": EMAILS["customer"], "password": PASSWORD}, (None,), None)
        ],
        "/auth/logout": [Post("/auth/logout", {}, ("customer", "admin"), "customer")],
        "/auth/reset": [Post("/auth/reset", {"email": EMAILS["customer"]}, (None,), None)],
        "/auth/reset/<token>": [
            Post(
                f"/auth/reset/{w.reset_token}",
                {"password": PASSWORD + "!", "confirm": PASSWORD + "!"},
                (None,),
                None,
            )
        ],
        "/auth/verify": [Post("/auth/verify", {}, ("customer",), "customer")],
        "/auth/verify/<token>": [
            Post(f"/auth/verify/{w.verify_token}", {"password": PASSWORD}, EVERYONE, None)
        ],
        "/auth/register": [
            Post(
                "/auth/register",
                {"email": "neu@example.com", "password": PASSWORD, "confirm": PASSWORD},
                (None,),
                None,
            )
        ],
        "/buyers": [
            Post(
                "/buyers",
                {"buyer_tax_id": BUYER_TAX_ID, "buyer_name": "北京"},
                EVERYONE,
                "customer",
            )
        ],
        "/buyers/invitations/<token>": [
            Post(f"/buyers/invitations/{w.invitation_token}", {}, EVERYONE, "customer")
        ],
        "/cases/<reference>/confirm": [
            Post(f"/cases/{w.case_ref}/confirm", {"number": "12345678"}, EVERYONE, "customer")
        ],
        "/cases/<reference>/evidence": [
            Post(f"/cases/{w.case_ref}/evidence", {"files": png}, EVERYONE, "customer")
        ],
        "/cases/<reference>/messages": [
            Post(f"/cases/{w.case_ref}/messages", {"body": "你好"}, EVERYONE, "customer")
        ],
        "/cases/<reference>/withdraw": [
            Post(f"/cases/{w.case_ref}/withdraw", {"reason": "已找到"}, EVERYONE, "customer")
        ],
        "/cases/new": [Post("/cases/new", report, EVERYONE, "customer")],
        "/language": [Post("/language", {"language": "en", "next": "/"}, EVERYONE, None)],
        "/lookup": [Post("/lookup", lookup, EVERYONE, None)],
        "/rate/<token>": [
            Post(f"/rate/{w.rating_token}", {"score": "5", "comment": "好"}, EVERYONE, None)
        ],
        "/staff/buyer-links": [Post("/staff/buyer-links", invite, EVERYONE, "admin")],
        "/staff/buyer-links/decide": [
            Post(
                "/staff/buyer-links/decide",
                {"link_id": str(w.link_id), "decision": "approve"},
                EVERYONE,
                "admin",
            )
        ],
        **{
            f"/staff/cases/<reference>/{action}": [
                Post(
                    f"/staff/cases/{w.other_ref}/{action}",
                    decisions,
                    (None, "customer", "reviewer", "admin"),
                    "admin",
                )
            ]
            for action in STAFF_ACTIONS
        },
        "/staff/cases/<reference>/evidence": [
            Post(f"/staff/cases/{w.case_ref}/evidence", {"files": png}, EVERYONE, "admin")
        ],
        **{
            f"/staff/findings/<int:finding_id>/{action}": [
                Post(f"/staff/findings/1/{action}", {"note": "说明"}, EVERYONE, "admin")
            ]
            for action in ("resubmit", "reenter", "explain")
        },
        "/staff/cases/new": [
            Post(
                "/staff/cases/new",
                {**report, "channel": "phone", "contact_phone": "13800000000"},
                EVERYONE,
                "admin",
            )
        ],
        "/staff/dead-letters": [
            Post(
                "/staff/dead-letters",
                {"submission": str(w.dead_submission_id)},
                EVERYONE,
                "admin",
            )
        ],
        "/staff/queue/bulk": [
            Post("/staff/queue/bulk", {"case": w.other_ref, "action": "claim"}, EVERYONE, "admin")
        ],
        "/staff/users": [Post("/staff/users", staff_user, EVERYONE, "admin")],
        "/staff/users/<int:user_id>": [
            Post(
                f"/staff/users/{world.ids['reviewer']}",
                {"role": "admin", "active": "y"},
                EVERYONE,
                "admin",
            )
        ],
        "/staff/users/<int:user_id>/totp-reset": [
            Post(f"/staff/users/{world.ids['reviewer']}/totp-reset", {}, EVERYONE, "admin")
        ],
    }
    return table.get(rule)


def _materialise(data, client) -> dict:
    """The form data; new file objects for every request (a BytesIO is read only once)."""
    if callable(data):
        return data(client)
    return {
        key: (io.BytesIO(value[1]()), "fapiao.png") if isinstance(value, tuple) else value
        for key, value in data.items()
    }


def _snapshot(app) -> dict:
    """Every table's row count, and the columns a refused POST could have changed."""
    from portal.models import BuyerLink, Case, Submission, User

    with app.app_context():
        counts = {
            t.name: db.session.scalar(select(func.count()).select_from(t))
            for t in db.metadata.sorted_tables
        }
        case_columns = (Case.reference, Case.state, Case.assignee_id, Case.rating_nonce)
        user_columns = (User.email, User.role, User.active, User.locale, User.optional_mail)
        rows = {
            "cases": db.session.execute(select(*case_columns, Case.confirmed_fields)).all(),
            "users": db.session.execute(
                select(*user_columns, User.session_token, User.password_hash, User.totp_secret)
            ).all(),
            "links": db.session.execute(select(BuyerLink.id, BuyerLink.state)).all(),
            "submissions": db.session.execute(select(Submission.id, Submission.state)).all(),
        }
    return {"counts": counts, "rows": {k: sorted(map(repr, v)) for k, v in rows.items()}}


def _post_rules() -> list[str]:
    # Nothing connects while the app is built, so this is safe at collection time.
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": "redis://127.0.0.1:1"})
    rules = {r.rule for r in app.url_map.iter_rules() if "POST" in r.methods}
    return sorted(r for r in rules if not r.startswith("/api/"))


POST_RULES = _post_rules()


def test_the_csrf_test_sees_the_post_rules():
    assert "/staff/cases/<reference>/approve" in POST_RULES and "/auth/login" in POST_RULES


# The POST rules a Hypothesis test below posts random forms to.
FUZZED_POST_RULES = {
    "/auth/2fa": "test_fuzz_second_factor",
    "/auth/2fa/setup": "test_fuzz_second_factor",
    "/auth/account": "test_fuzz_account",
    "/auth/login": "test_fuzz_register_and_login",
    "/auth/logout": "test_fuzz_logout",
    "/auth/register": "test_fuzz_register_and_login",
    "/auth/reset": "test_fuzz_mailed_links",
    "/auth/reset/<token>": "test_fuzz_mailed_links",
    "/auth/verify": "test_fuzz_mailed_links",
    "/auth/verify/<token>": "test_fuzz_mailed_links",
    "/buyers": "test_fuzz_buyer_link_request",
    "/buyers/invitations/<token>": "test_fuzz_invitation",
    "/cases/<reference>/confirm": "test_fuzz_case_forms",
    "/cases/<reference>/evidence": "test_fuzz_evidence_upload",
    "/cases/<reference>/messages": "test_fuzz_case_forms",
    "/cases/<reference>/withdraw": "test_fuzz_case_forms",
    "/cases/new": "test_fuzz_new_case",
    "/language": "test_fuzz_language",
    "/lookup": "test_fuzz_lookup",
    "/lookup/scan": "test_fuzz_lookup_scan",
    "/rate/<token>": "test_fuzz_rating_link",
    "/staff/buyer-links": "test_fuzz_staff_buyer_links",
    "/staff/buyer-links/decide": "test_fuzz_staff_buyer_links",
    **{f"/staff/cases/<reference>/{a}": "test_fuzz_staff_case_actions" for a in STAFF_ACTIONS},
    "/staff/cases/<reference>/evidence": "test_fuzz_evidence_upload",
    "/staff/cases/new": "test_fuzz_offline_case",
    "/staff/dead-letters": "test_fuzz_dead_letters",
    "/staff/findings/<int:finding_id>/explain": "test_fuzz_findings",
    "/staff/findings/<int:finding_id>/reenter": "test_fuzz_findings",
    "/staff/findings/<int:finding_id>/resubmit": "test_fuzz_findings",
    "/staff/queue/bulk": "test_fuzz_queue_bulk",
    "/staff/users": "test_fuzz_staff_users",
    "/staff/users/<int:user_id>": "test_fuzz_staff_users",
    "/staff/users/<int:user_id>/totp-reset": "test_fuzz_staff_users",
}


def test_every_form_is_fuzzed():
    missing = [rule for rule in POST_RULES if rule not in FUZZED_POST_RULES]
    assert not missing, f"no Hypothesis test posts to {missing}: add one to tests/test_fuzz.py"


# Anonymous forms without a session token (portal/web/forms.py): the cross-origin check is what
# guards them.
SESSIONLESS_POST_RULES = frozenset({"/lookup", "/lookup/scan", "/language"})
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}


@pytest.mark.parametrize("rule", POST_RULES)
def test_every_post_route_refuses_a_request_without_a_csrf_token(app, world, rule):
    """Every POST route refuses a request from another site, even with the visitor's own token;
    every route but the sessionless ones refuses one without the token, or with another's."""
    posts = _fill(world, world.fresh(), rule)
    assert posts is not None, (
        f"a new POST route {rule!r}: teach _fill() in tests/test_fuzz.py how to fill its URL "
        "parameters and what to post, so that its CSRF protection is tested"
    )
    clients = {role: signed_in(app, role) for role in {r for p in posts for r in p.roles}}
    _other, foreign = signed_in(app, None)
    for post in posts:
        for role in post.roles:
            client, token = clients[role]
            before = _snapshot(app)
            attempts = [("cross-site, own token", {"csrf_token": token}, CROSS_SITE)]
            if rule not in SESSIONLESS_POST_RULES:
                attempts += [("no token", {}, {}), ("a foreign token", {"csrf_token": foreign}, {})]
            for label, extra, headers in attempts:
                data = {**_materialise(post.data, client), **extra}
                refused = client.post(post.url, data=data, headers=headers)
                where = (post.url, role, label)
                assert refused.status_code == 400, (*where, refused.status_code)
                assert CSRF_MESSAGE in refused.get_data(as_text=True), where
            assert _snapshot(app) == before, f"{post.url} as {role} changed data without a token"
        # Positive control: with the right token the request reaches the view, so the URL names
        # real objects and the refusals above were the CSRF check's.
        client, token = clients[post.owner] if post.owner in clients else signed_in(app, None)
        data = {**_materialise(post.data, client), "csrf_token": token}
        allowed = check(app, client.post(post.url, data=data), f"POST {post.url}")
        assert allowed.status_code not in (400, 404, 405), (post.url, allowed.status_code)


def test_the_api_is_csrf_exempt_and_never_accepts_a_browser_session(app, world):
    """CSRF abuses cookie authentication; the API knows bearer tokens only."""
    from portal.models import Invoice, User
    from portal.services import accounts

    body = {**approval(), "number": "55555555"}
    browser = app.test_client()
    assert AuthActions(browser).login(EMAILS["admin"], PASSWORD, remember=True).status_code == 302
    assert browser.get("/staff/users").status_code == 200  # the session really works
    token = csrf_token_from(browser.get("/").get_data(as_text=True))

    def invoices():
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(Invoice))

    before = invoices()
    api_rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/")]
    assert api_rules
    for rule in api_rules:
        if rule.rule.endswith("/openapi.json"):
            continue  # public by design ("security": [])
        url = rule.rule.replace("<key>", world.first.invoice_key)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for headers in (
                {},
                {"X-CSRFToken": token},
                {"Authorization": "Bearer"},
                {"Authorization": f"Bearer {token}"},
            ):
                answer = browser.open(url, method=method, json=body, headers=headers)
                assert answer.status_code == 401, (method, url, headers, answer.status_code)
                assert answer.is_json and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert invoices() == before
    # With a bearer token: no cookies, no CSRF token, and it works.
    with app.app_context():
        bearer = accounts.issue_api_token(db.session.get(User, world.ids["reviewer"]), "billing")
    machine = app.test_client(use_cookies=False)
    created = machine.post(
        "/api/v1/invoices", json=body, headers={"Authorization": f"Bearer {bearer}"}
    )
    assert created.status_code == 201, created.get_json()
    assert invoices() == before + 1


# ============================================================================ 2. forms

# --- strategies ---------------------------------------------------------------------------

NASTY = st.sampled_from(
    [
        *("", " ", "\t", "\x00", "a\x00b", "\r\n", "\n\n", "\x7f", "\u0085", "\u2028"),
        *("0", "-0", "-1", "+1", "00", "1e309", "-1e309", "1e-400", "NaN", "sNaN", "Infinity"),
        *("9" * 25, "9" * 400, "0.001", "1,000.00", "1_000", "0x10", "１２３４５６７８"),
        *("٠١٢٣٤٥٦٧", "²³⁴", "𝟙𝟚𝟛", "½", "Ⅻ", "০১২"),
        *("2026-02-30", "2026-13-01", "0000-00-00", "0001-01-01", "9999-12-31", "10000-01-01"),
        *("2026/05/01", "20260501", "2026-05-01T00:00:00", "-2026-05-01", "2026-05-01T25:00"),
        *("../../../etc/passwd", "..\\..\\boot.ini", "/", "//evil.example", "/\\evil.example"),
        *("javascript:alert(1)", "/%0d%0aSet-Cookie:x=1", "/\r\nSet-Cookie: x=1"),
        *("<script>alert(1)</script>", "{{7*7}}", "{% raw %}", "%(x)s", "%s%s%s", "{0}"),
        *("'\"; DROP TABLE users; --", "\u202e", "\ufeff", "\u200b", "\U0010ffff", "𠀀"),
        *("e\u0301", "İ", "ß", "ﬀ", "BJ-2026-000001", "BJ-9999-999999", "@", "a@b"),
        *("x@例子.中国", "true", "false", "None", "null", "[]", "{}"),
    ]
)
CONTROL = st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs", "Mn", "Co"]), max_size=20)
HUGE = st.builds(
    lambda unit, n: unit * n,
    st.sampled_from(["9", "a", "发", "\x00", " ", "𠀀", "1.", "<"]),
    st.sampled_from([1_000, 10_000, 60_000]),
)
BOUNDARY_INTS = [
    0,
    -1,
    1,
    2**31 - 1,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    10**30,
    -(2**63) - 1,
]
INTISH = st.one_of(  # what a form or URL says where the code expects an id or a count
    st.sampled_from(BOUNDARY_INTS).map(str),
    st.integers(-(2**70), 2**70).map(str),
    st.integers(0, 40).map(str),
    st.sampled_from(["²", "١٢", "𝟙", "1_000", " 7 ", "+5", "0x10", "1e3", "-0", "07", ""]),
    st.integers(2**63, 10**40).map(str),  # beyond any database integer
)
DIGITS = st.text("0123456789", max_size=25)
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=200),
    CONTROL,
    NASTY,
    DIGITS,
    INTISH,
    HUGE,
)


def plausible(*values):
    """A field's real-looking values, or anything at all."""
    return st.one_of(st.sampled_from(values), TEXT)


MONEY = st.one_of(
    st.decimals(min_value=-10, max_value=10**13, places=2, allow_nan=False).map(str),
    st.sampled_from(["100.00", "6.00", "106.00", "0.00", "0", "100000.01", "99999999999.99"]),
    TEXT,
)
MOMENTS = st.one_of(  # dates, and date-times with and without offsets
    st.dates(min_value=date(1, 1, 1)).map(date.isoformat),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
        datetime.isoformat
    ),
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    st.sampled_from(["2026-05-01", "0001-01-01", "0001-01-01T07:59", "9999-12-31T23:59:59"]),
)
EDGE_DATES = st.sampled_from(
    [
        "0001-01-01",
        "0001-01-01T07:59",
        "0001-01-01T00:00+14:00",
        "9999-12-31T23:59:59",
        "9999-12-31T23:59-12:00",
    ]
)
DATES = st.one_of(EDGE_DATES, MOMENTS, st.just(date.today().isoformat()), TEXT)
CODE = plausible(BEIJING_CODE, "1100194130", "144031900111", "011002000111", "")
NUMBER = plausible("12345678", "51142414", "24312000000136634917", "25117000000136634917")
CHECK = plausible(CHECK_CODE, "123456", "114698")
TAX_ID = plausible(BUYER_TAX_ID, SELLER_TAX_ID, "110101198001010011", "91110101MA00000000")
EMAIL = st.one_of(st.emails().map(str), TEXT, st.just(EMAILS["customer"]))
NEXT_PLACES = st.sampled_from(  # where a sign-in or language switch may be told to go next
    [
        *("/", "/lookup?x=1", "//evil.example", "/\\evil.example", "https://evil.example/"),
        *("/\r\nSet-Cookie: x=1", "/\nx", "/\rx", "/\x00", "/\t/evil.example", "/%0d%0aX:1"),
    ]
)
NEXT = st.one_of(NEXT_PLACES, NEXT_PLACES, TEXT)
QR = st.one_of(
    st.sampled_from(
        [
            "01,10,012001900111,51142414,47.26,20190720,65431824771847114698,8BDD,",
            "01,32,,24312000000136634917,0.01,20240514,,1DD6",
            "01,10,153002209100,11335527,91530102MA7KNHQC36,459.00,20221102,00fe43",
            "01,",
            "01,,,,,,,,",
            "01," + "," * 400,
        ]
    ),
    st.lists(st.one_of(TEXT, MONEY, DATES), max_size=9).map(lambda p: "01," + ",".join(p)),
    TEXT,
)
EXTRA = st.dictionaries(
    st.text(min_size=1, max_size=20).filter(lambda k: k != "csrf_token"),
    st.one_of(TEXT, st.lists(TEXT, min_size=2, max_size=3)),  # a list repeats the field
    max_size=3,
)


def form(required: dict | None = None, **fields):
    """The ``required`` fields, any subset of ``fields`` (each sometimes repeated), plus random
    extra fields."""

    def maybe_many(strategies):
        return {n: st.one_of(s, st.lists(s, min_size=2, max_size=3)) for n, s in strategies.items()}

    return st.builds(
        lambda chosen, extra: {**extra, **chosen},
        st.fixed_dictionaries(maybe_many(required or {}), optional=maybe_many(fields)),
        EXTRA,
    )


FILENAME = st.one_of(
    st.sampled_from(
        [
            *("fapiao.png", "发票.jpg", "../../etc/passwd", "..\\..\\x.pdf", ".htaccess", ""),
            *("a" * 300 + ".pdf", "x.PDF", "x.svg", "x.html", "\u202egpj.exe", "con.xml"),
            *("x.heic", "x.ofd", "x.xml", "x.webp", "x\x00.png", "\u200b.png", "...", "/"),
        ]
    ),
    st.text(max_size=60),
    st.builds(
        lambda stem, ext: stem + ext,
        st.text(max_size=20),
        st.sampled_from([".png", ".jpg", ".pdf", ".xml", ".ofd", ".heic", ".webp"]),
    ),
)
MAGIC = st.sampled_from(
    [
        *(b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"%PDF-1.7\n", b"PK\x03\x04"),
        *(b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"\x00\x00\x00\x18ftypheic", b"<?xml version='1.0'?>"),
        *(b"<html>", b"<svg xmlns='http://www.w3.org/2000/svg'>", b"\xef\xbb\xbf<?xml"),
        b"<!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]><x>&a;</x>",
    ]
)
RANDOM_FILE = st.tuples(st.builds(bytes.__add__, MAGIC, st.binary(max_size=4096)), FILENAME)


@functools.cache
def seed_files() -> tuple[tuple[str, bytes], ...]:
    """Real invoice files to mutate: random bytes seldom get past the type sniffer."""
    from tests.scans import corpus

    paper, digital = corpus.BEIJING_E_ORDINARY, corpus.BEIJING_DIGITAL
    photo = corpus.qr_image(paper.qr_text)
    return (
        ("fapiao.pdf", corpus.invoice_pdf(paper)),
        ("fapiao.ofd", corpus.invoice_ofd(digital)),
        ("fapiao.xml", corpus.einvoice_xml(digital)),
        ("fapiao.png", corpus.encode(photo, "PNG")),
        ("fapiao.jpg", corpus.encode(photo, "JPEG")),
    )


def mutated(index: int, flips: list, cut: int | None, name: str | None) -> tuple[bytes, str]:
    seed_name, seed = seed_files()[index]
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    return bytes(data), seed_name if name is None else name


MUTATED_FILE = st.builds(
    mutated,
    st.integers(0, 4),
    st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=8),
    st.one_of(st.none(), st.integers(0, 2**20)),
    st.one_of(st.none(), FILENAME),
)
FILE = st.one_of(RANDOM_FILE, MUTATED_FILE)
# A file field's value: files, or (as a form can always send) plain text in its place.
FILE_VALUE = st.one_of(st.lists(FILE, max_size=3), TEXT)


def as_upload(value):
    if isinstance(value, str):
        return value
    return [(io.BytesIO(content), name) for content, name in value]


def post_form(app, client, url, data, token, *, multipart=False):
    kwargs = {"content_type": "multipart/form-data"} if multipart else {}
    return send(app, client, "POST", url, data={**data, "csrf_token": token}, **kwargs)


def ref_in_url(text: str) -> str:
    return quote(text, safe="") or "-"


# --- sign-up, sign-in, two-step ------------------------------------------------------------


@FUZZ
@given(
    data=form(
        email=EMAIL, password=plausible(PASSWORD), confirm=plausible(PASSWORD), remember=TEXT
    ),
    real_account=st.booleans(),
    next_=st.one_of(st.none(), NEXT),
    url=st.sampled_from(["/auth/register", "/auth/login"]),
    multipart=st.booleans(),
)
def test_fuzz_register_and_login(app, world, data, real_account, next_, url, multipart):
    client, token = signed_in(app, None)  # a new client: a success signs it in
    if real_account:  # the right e-mail and password, so that ?next= is followed
        data = {**data, "email": EMAILS["customer"], "password": PASSWORD, "confirm": PASSWORD}
    target = url if next_ is None else f"{url}?next={quote(next_, safe='')}"
    answer = post_form(app, client, target, data, token, multipart=multipart)
    if answer.status_code == 302:  # signed in: the next page must work too
        send(app, client, "GET", target)


CODES = plausible("000000", "123456", "²²²²²²", "١٢٣٤٥٦", " 1 2 3 4 5 6 ", "1234567890123")


@FUZZ
@given(data=form(code=CODES), step=st.sampled_from(["/auth/2fa", "/auth/2fa/setup"]))
def test_fuzz_second_factor(app, world, data, step):
    client, token = signed_in(app, "pending-admin" if step == "/auth/2fa" else "reviewer")
    post_form(app, client, step, data, token)


@FUZZ
@given(
    data=form(email=EMAIL, password=plausible(PASSWORD + "!"), confirm=plausible(PASSWORD + "!")),
    url=st.sampled_from(["/auth/reset", "/auth/reset/{reset}", "/auth/verify/{verify}"]),
    token_text=st.one_of(st.none(), TEXT),
)
def test_fuzz_mailed_links(app, world, data, url, token_text):
    client, token = signed_in(app, None)
    fresh = world.fresh()
    if token_text is not None:
        fresh = dataclasses.replace(fresh, reset_token=token_text, verify_token=token_text)
    target = url.format(reset=ref_in_url(fresh.reset_token), verify=ref_in_url(fresh.verify_token))
    post_form(app, client, target, data, token)
    restore_customer(world)
    customer_client, customer_token = signed_in(app, "customer")
    post_form(app, customer_client, "/auth/verify", data, customer_token)


def restore_customer(world: World) -> None:
    """The customer as the world made them: a fuzzed reset link may have set another password
    (a valid one is a success, not a bug), and fuzzed confirmations count as failed sign-ins."""
    from portal.models import User
    from portal.services import accounts, throttle

    with world.app.app_context():
        user = db.session.get(User, world.ids["customer"])
        user.password_hash = accounts.hash_password(PASSWORD)
        db.session.commit()
        throttle.clear_account(throttle.account_id(accounts.login_name(EMAILS["customer"])))


# --- customer ------------------------------------------------------------------------------


@pytest.fixture
def customer(app, world):
    return signed_in(app, "customer")


@pytest.fixture
def reviewer(app, world):
    return signed_in(app, "reviewer")


@pytest.fixture
def supervisor(app, world):
    return signed_in(app, "supervisor")


@pytest.fixture
def admin(app, world):
    return signed_in(app, "admin")


@FUZZ
@given(data=form(optional_mail=plausible("y", "", "on", "false")))
def test_fuzz_account(app, world, customer, data):
    client, token = customer
    post_form(app, client, "/auth/account", data, token)


@FEW
@given(data=EXTRA, role=st.sampled_from(["customer", "reviewer"]))
def test_fuzz_logout(app, world, data, role):
    client, token = signed_in(app, role)  # anew: signing out ends every session of the user
    post_form(app, client, "/auth/logout", data, token)


@FUZZ
@given(
    data=form(
        code=CODE,
        number=NUMBER,
        issue_date=DATES,
        amount=MONEY,
        total=MONEY,
        check_code_last6=CHECK,
        qr_text=QR,
    ),
    anonymous=st.booleans(),
    multipart=st.booleans(),
)
def test_fuzz_lookup(app, world, customer, data, anonymous, multipart):
    client, token = signed_in(app, None) if anonymous else customer
    post_form(app, client, "/lookup", data, token, multipart=multipart)


@FUZZ
@given(
    data=form(
        code=CODE,
        number=NUMBER,
        issue_date=DATES,
        amount=MONEY,
        total=MONEY,
        check_code=CHECK,
        buyer_tax_id=TAX_ID,
        contact_preference=plausible("email", "phone"),
        contact_phone=plausible("13800000000", "+86 10 1234 5678"),
        description=TEXT,
    ),
    multipart=st.booleans(),
)
def test_fuzz_new_case(app, world, customer, data, multipart):
    client, token = customer
    post_form(app, client, "/cases/new", data, token, multipart=multipart)


@FUZZ
@given(
    action=st.sampled_from(["messages", "withdraw", "confirm"]),
    data=form(
        body=TEXT,
        reason=TEXT,
        code=CODE,
        number=NUMBER,
        issue_date=DATES,
        amount=MONEY,
        tax=MONEY,
        total=MONEY,
        check_code=CHECK,
        buyer_tax_id=TAX_ID,
    ),
    reference=st.one_of(st.none(), TEXT),
    multipart=st.booleans(),
)
def test_fuzz_case_forms(app, world, customer, action, data, reference, multipart):
    client, token = customer
    if reference is None:
        with app.app_context():
            reference = open_case(world.ids["customer"])
    url = f"/cases/{ref_in_url(reference)}/{action}"
    post_form(app, client, url, data, token, multipart=multipart)


@FUZZ
@given(files=FILE_VALUE, extra=EXTRA, role=st.sampled_from(["customer", "reviewer"]))
def test_fuzz_evidence_upload(app, world, customer, reviewer, files, extra, role):
    client, token = customer if role == "customer" else reviewer
    prefix = "/staff" if role == "reviewer" else ""
    data = {**extra, "files": as_upload(files)}
    url = f"{prefix}/cases/{world.first.case_ref}/evidence"
    post_form(app, client, url, data, token, multipart=True)


@FUZZ
@given(file=st.one_of(FILE.map(lambda f: [f]), TEXT), extra=EXTRA, anonymous=st.booleans())
def test_fuzz_lookup_scan(app, world, customer, file, extra, anonymous):
    client, token = signed_in(app, None) if anonymous else customer
    post_form(
        app, client, "/lookup/scan", {**extra, "file": as_upload(file)}, token, multipart=True
    )


@FUZZ
@given(data=form(buyer_tax_id=TAX_ID, buyer_name=TEXT, note=TEXT), multipart=st.booleans())
def test_fuzz_buyer_link_request(app, world, customer, data, multipart):
    client, token = customer
    post_form(app, client, "/buyers", data, token, multipart=multipart)


@FUZZ
@given(
    token_text=st.one_of(st.none(), TEXT),
    data=form(score=st.one_of(st.sampled_from(["1", "3", "5"]), INTISH, TEXT), comment=TEXT),
    query_score=st.one_of(st.none(), INTISH, TEXT),
    method=st.sampled_from(["GET", "POST"]),
)
def test_fuzz_rating_link(app, world, token_text, data, query_score, method):
    client, token = signed_in(app, None)
    rating = world.fresh().rating_token if token_text is None else ref_in_url(token_text)
    url = f"/rate/{rating}" + ("" if query_score is None else f"?score={quote(query_score)}")
    if method == "GET":
        send(app, client, "GET", url)
    else:
        post_form(app, client, url, data, token)


@FUZZ
@given(
    token_text=st.one_of(st.none(), TEXT),
    data=EXTRA,
    method=st.sampled_from(["GET", "POST"]),
)
def test_fuzz_invitation(app, world, customer, token_text, data, method):
    client, token = customer
    invitation = world.first.invitation_token if token_text is None else ref_in_url(token_text)
    url = f"/buyers/invitations/{invitation}"
    if method == "GET":
        send(app, client, "GET", url)
    else:
        post_form(app, client, url, data, token)


@FUZZ
@given(
    data=form(required={"language": plausible("en", "zh_CN", "zh", "EN"), "next": NEXT}),
    anonymous=st.booleans(),
)
def test_fuzz_language(app, world, customer, data, anonymous):
    client, token = signed_in(app, None) if anonymous else customer
    post_form(app, client, "/language", data, token)


# --- staff ---------------------------------------------------------------------------------

APPROVE_FIELDS = {
    "code": CODE,
    "number": NUMBER,
    "kind": plausible("e_ordinary", "10", "01", "special", "digital", "32"),
    "issue_date": DATES,
    "amount": MONEY,
    "tax": MONEY,
    "total": MONEY,
    "buyer_tax_id": TAX_ID,
    "buyer_name": plausible("北京示例科技有限公司"),
    "seller_tax_id": TAX_ID,
    "check_code": CHECK,
}


def action_form(action: str, ids: dict):
    if action == "approve":  # mostly-valid approvals with some fields fuzzed, and random ones
        mostly = st.builds(
            lambda fuzzed: {**approval(), **fuzzed},
            st.fixed_dictionaries({}, optional=APPROVE_FIELDS),
        )
        return st.one_of(mostly, form(**APPROVE_FIELDS))
    if action == "assign":
        reviewer = st.one_of(st.sampled_from(list(ids.values())).map(str), INTISH)
        return form(required={"reviewer_id": reviewer})
    if action == "reject":
        return form(reason_code=plausible("other", "duplicate", "not_beijing"), text=TEXT)
    if action == "merge":
        return form(into=plausible("TWIN", "SELF", "BJ-2026-000001"))
    if action == "priority":
        return form(priority=plausible("urgent", "normal"))
    if action == "reply":  # the reply box is prefixed: the page also has the request box
        return form(**{"reply-text": TEXT})
    return form(text=TEXT)  # request_info and reply read it; the others ignore everything


def _fuzz_staff_action(app, ids: dict, action: str, clients: dict) -> None:
    from portal.models import Case, User
    from portal.services import review

    @FEW
    @given(data=action_form(action, ids), claimed=st.booleans(), multipart=st.booleans())
    def run(data, claimed, multipart):
        with app.app_context():
            # A new case, claimed by the supervisor (decisions need that), and an open twin
            # of the same invoice to merge it into.
            ref = open_case(ids["customer"], claim_by=ids["supervisor"] if claimed else None)
            twin = open_case(ids["customer"])
            if action == "confirm" and claimed:  # a large approval waiting for a second one
                case = db.session.scalar(select(Case).where(Case.reference == ref))
                large = {"amount": "200000.00", "tax": "12000.00", "total": "212000.00"}
                review.approve(case, db.session.get(User, ids["supervisor"]), approval() | large)
        if action == "merge" and isinstance(data.get("into"), str):
            data = {**data, "into": data["into"].replace("TWIN", twin).replace("SELF", ref)}
        client, token = clients["admin" if action == "confirm" else "supervisor"]
        post_form(app, client, f"/staff/cases/{ref}/{action}", data, token, multipart=multipart)

    run()


def test_fuzz_staff_case_actions(app, world):
    """Each decision on a case, each with its own Hypothesis run."""
    clients = {role: signed_in(app, role) for role in ("supervisor", "admin")}
    for action in STAFF_ACTIONS:
        _fuzz_staff_action(app, world.ids, action, clients)


@FUZZ
@given(
    reference=st.one_of(st.just("CASE"), TEXT),
    action=st.one_of(st.sampled_from(STAFF_ACTIONS), TEXT),
    data=form(text=TEXT, into=TEXT, reviewer_id=INTISH, reason_code=TEXT),
)
def test_fuzz_staff_case_action_urls(app, world, supervisor, reference, action, data):
    client, token = supervisor
    reference = world.first.other_ref if reference == "CASE" else reference
    url = f"/staff/cases/{ref_in_url(reference)}/{ref_in_url(action)}"
    post_form(app, client, url, data, token)


@FUZZ
@given(
    data=form(
        channel=plausible("counter", "phone", "email"),
        contact_email=EMAIL,
        contact_phone=plausible("13800000000"),
        code=CODE,
        number=NUMBER,
        issue_date=DATES,
        amount=MONEY,
        total=MONEY,
        check_code=CHECK,
        buyer_tax_id=TAX_ID,
        description=TEXT,
    ),
    multipart=st.booleans(),
)
def test_fuzz_offline_case(app, world, reviewer, data, multipart):
    client, token = reviewer
    post_form(app, client, "/staff/cases/new", data, token, multipart=multipart)


@FUZZ
@given(
    chosen=st.lists(st.one_of(st.sampled_from(["OPEN", "CLAIMED"]), TEXT), max_size=3),
    action=st.one_of(
        st.sampled_from(["claim", "auto_assign", "release", "assign:"]),
        st.sampled_from(["assign:REVIEWER", "assign:CUSTOMER"]),
        INTISH.map(lambda n: "assign:" + n),
        TEXT,
    ),
    extra=EXTRA,
    role=st.sampled_from(["reviewer", "admin"]),
)
def test_fuzz_queue_bulk(app, world, reviewer, admin, chosen, action, extra, role):
    client, token = reviewer if role == "reviewer" else admin
    with app.app_context():
        names = {
            "OPEN": open_case(world.ids["customer"]),
            "CLAIMED": open_case(world.ids["customer"], claim_by=world.ids["reviewer"]),
        }
    action = action.replace("REVIEWER", str(world.ids["reviewer"]))
    action = action.replace("CUSTOMER", str(world.ids["customer"]))
    data = {**extra, "case": [names.get(c, c) for c in chosen], "action": action}
    post_form(app, client, "/staff/queue/bulk", data, token)


@FUZZ
@given(
    data=form(
        submission=st.one_of(st.just("DEAD"), INTISH, TEXT),
        all=plausible("1", "", "y"),
        error_kind=plausible("rejected", "timeout", ""),
    ),
)
def test_fuzz_dead_letters(app, world, reviewer, data):
    client, token = reviewer
    if data.get("submission") == "DEAD":
        data = {**data, "submission": str(world.fresh().dead_submission_id)}
    post_form(app, client, "/staff/dead-letters", data, token)


@FUZZ
@given(
    finding_id=st.integers(min_value=0, max_value=2**40),
    action=st.sampled_from(["resubmit", "reenter", "explain"]),
    data=form(note=TEXT),
)
def test_fuzz_findings(app, world, reviewer, finding_id, action, data):
    client, token = reviewer
    post_form(app, client, f"/staff/findings/{finding_id}/{action}", data, token)


@FUZZ
@given(
    invite=form(email=EMAIL, buyer_tax_id=TAX_ID, buyer_name=TEXT),
    decide=form(
        link_id=st.one_of(st.just("LINK"), INTISH, TEXT),
        decision=plausible("approve", "reject"),
    ),
)
def test_fuzz_staff_buyer_links(app, world, reviewer, invite, decide):
    client, token = reviewer
    post_form(app, client, "/staff/buyer-links", invite, token)
    if decide.get("link_id") == "LINK":
        decide = {**decide, "link_id": str(world.fresh().link_id)}
    post_form(app, client, "/staff/buyer-links/decide", decide, token)


@FUZZ
@given(
    create=form(
        email=EMAIL,
        display_name=TEXT,
        role=plausible("reviewer", "supervisor", "admin", "customer"),
        password=plausible(PASSWORD, "short"),
    ),
    update=form(
        role=plausible("reviewer", "admin", "customer"),
        active=plausible("y", ""),
        password=plausible(PASSWORD + "!", ""),
    ),
    user=st.one_of(st.sampled_from(["reviewer", "supervisor", "admin"]), INTISH),
)
def test_fuzz_staff_users(app, world, create, update, user):
    client, token = signed_in(app, "admin")  # anew: an update may end the admin's sessions
    post_form(app, client, "/staff/users", create, token)
    user_id = world.ids.get(user, user)
    send(
        app,
        client,
        "POST",
        f"/staff/users/{ref_in_url(str(user_id))}",
        data={**update, "csrf_token": token},
    )
    send(
        app,
        client,
        "POST",
        f"/staff/users/{ref_in_url(str(user_id))}/totp-reset",
        data={**update, "csrf_token": token},
    )


# --- GET pages: random query strings and path segments ----------------------------------------

QUERY_FIELDS = {
    "code": CODE,
    "number": NUMBER,
    "issue_date": DATES,
    "amount": MONEY,
    "total": MONEY,
    "check_code_last6": CHECK,
    "q": TEXT,
    "page": INTISH,
    "state": plausible("awaiting_review", "in_review", "registered", "pending"),
    "channel": plausible("web", "phone"),
    "region": plausible("beijing", "other"),
    "assignee": st.one_of(st.sampled_from(["me", "none"]), INTISH),
    "older_than_hours": INTISH,
    "amount_min": MONEY,
    "amount_max": MONEY,
    "date_from": DATES,
    "date_to": DATES,
    "since": DATES,
    "until": DATES,
    "actor": TEXT,
    "action": TEXT,
    "object_type": plausible("case", "user", "invoice"),
    "object_id": TEXT,
    "error_kind": plausible("rejected", "timeout"),
    "score": INTISH,
    "next": NEXT,
}
URL_LIMIT = 1024  # gunicorn refuses request lines over 4094 bytes: longer URLs are moot


def clipped(value):
    """``value`` with every string cut to what a URL can carry."""
    if isinstance(value, dict):
        return {clipped(k): clipped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clipped(v) for v in value]
    return value[:URL_LIMIT] if isinstance(value, str) else value


QUERY = st.one_of(
    st.builds(
        lambda known, extra: clipped({**extra, **known}),
        st.fixed_dictionaries({}, optional=QUERY_FIELDS),
        EXTRA,
    ),
    st.text(st.characters(codec="ascii"), max_size=80),  # a raw query string
)

GET_PAGES = [
    ("/", None),
    ("/lookup", None),
    ("/lookup/fields", None),
    ("/help/", None),
    ("/help/search", None),
    ("/auth/login", "customer"),  # signed in: redirects to ?next=
    ("/auth/register", None),
    ("/auth/2fa", "pending-admin"),
    ("/auth/2fa/setup", "reviewer"),
    ("/auth/reset", None),
    ("/buyers", "customer"),
    ("/cases", "customer"),
    ("/auth/account", "customer"),
    ("/account/data.zip", "customer"),
    ("/cases/new", "customer"),
    ("/invoices", "customer"),
    ("/invoices.csv", "customer"),
    ("/staff/", "supervisor"),
    ("/staff/search", "reviewer"),
    ("/staff/dead-letters", "reviewer"),
    ("/staff/findings", "reviewer"),
    ("/staff/buyer-links", "reviewer"),
    ("/staff/cases/new", "reviewer"),
    ("/staff/audit", "supervisor"),
    ("/staff/audit.csv", "supervisor"),
    ("/staff/dashboard", "supervisor"),
    ("/staff/users", "admin"),
    ("/staff/mail", "reviewer"),
    ("/metrics", None),
    ("/healthz", None),
    ("/status", None),
]


def test_every_page_is_fuzzed(app):
    """Every GET page is in GET_PAGES (no URL parameters) or matched by a PATH_PAGES template."""
    adapter = app.url_map.bind("localhost")
    pages = {page for page, _role in GET_PAGES}
    templated = {adapter.match(t.format("1"))[0] for t, _role in PATH_PAGES}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in ("static", "api.openapi"):
            continue
        if rule.arguments:
            assert rule.endpoint in templated, f"add {rule.rule} to PATH_PAGES in test_fuzz.py"
        else:
            assert rule.rule in pages, f"add {rule.rule} to GET_PAGES in tests/test_fuzz.py"


def _fuzz_query_strings(app, client, page: str) -> None:
    # /status answers 503 while something it reports on is down (no worker runs here).
    allowed = (503,) if page == "/status" else ()

    @FEW
    @given(query=QUERY)
    def run(query):
        send(app, client, "GET", page, allowed, query_string=query)

    run()


def test_fuzz_get_query_strings(app, world):
    """Every page without URL parameters, each with its own Hypothesis run (in one test, so
    that the app and its signed-in clients are made once)."""
    from portal.models import User
    from portal.services import buyers

    with app.app_context():  # the customer sees the invoices of an approved buyer
        buyers.decide(world.first.link_id, db.session.get(User, world.ids["admin"]), True)
    rules = {r.rule for r in app.url_map.iter_rules()}
    clients = {role: signed_in(app, role) for role in {role for _page, role in GET_PAGES}}
    for page, role in GET_PAGES:
        if page in rules:  # a page another change has not added yet is skipped
            _fuzz_query_strings(app, clients[role][0], page)


PATH_PAGES = [
    ("/help/{}", None),
    ("/cases/{}", "customer"),
    ("/invoices/{}", "customer"),
    ("/evidence/{}/original", "customer"),
    ("/evidence/{}/preview", "customer"),
    ("/buyers/invitations/{}", "customer"),
    ("/rate/{}", None),
    ("/auth/reset/{}", None),
    ("/auth/verify/{}", None),
    ("/staff/invoices/{}", "reviewer"),
    ("/staff/cases/{}", "reviewer"),
    ("/staff/mail/{}", "reviewer"),
    ("/staff/cases/{}/registry.json", "reviewer"),
    ("/staff/evidence/{}/page/1.png", "reviewer"),
    ("/api/v1/invoices/{}", "api"),
]


def _fuzz_path_segments(app, client, template: str, real: str, headers: dict) -> None:
    @FEW
    @given(segment=st.one_of(st.just(real), INTISH, TEXT.map(clipped)))
    def run(segment):
        send(app, client, "GET", template.format(ref_in_url(segment)), headers=headers)

    run()


def test_fuzz_get_path_segments(app, world):
    from portal.models import User
    from portal.services import accounts

    with app.app_context():
        user = db.session.get(User, world.ids["reviewer"])
        api_headers = {"Authorization": f"Bearer {accounts.issue_api_token(user, 'fuzz')}"}
    clients = {role: signed_in(app, role)[0] for _t, role in PATH_PAGES if role != "api"}
    clients["api"] = app.test_client(use_cookies=False)
    real = {
        "/evidence/{}/original": str(world.upload_id),
        "/evidence/{}/preview": str(world.upload_id),
        "/cases/{}": world.first.case_ref,
        "/staff/cases/{}": world.first.case_ref,
        "/staff/cases/{}/registry.json": world.first.case_ref,
        "/staff/evidence/{}/page/1.png": str(world.upload_id),
        "/auth/reset/{}": world.first.reset_token,
        "/auth/verify/{}": world.first.verify_token,
    }
    for template, role in PATH_PAGES:
        headers = api_headers if role == "api" else {}
        value = real.get(template, world.first.invoice_key)
        _fuzz_path_segments(app, clients[role], template, value, headers)


# ============================================================================ 3. API


@pytest.fixture
def api(app, world):
    """The schema as the app serves it, and a staff bearer token."""
    import schemathesis

    from portal.models import User
    from portal.services import accounts

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    with app.app_context():
        user = db.session.get(User, world.ids["reviewer"])
        token = accounts.issue_api_token(user, "fuzz")
    return schema, {"Authorization": f"Bearer {token}"}


def _api_checks():
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, response_schema_conformance]


def _call_and_validate(app, case, headers):
    response = case.call(headers=headers)
    if response.status_code >= 500:
        crash = app.fuzz_crashes.tracebacks[-1] if app.fuzz_crashes.tracebacks else "(no log)"
        raise AssertionError(f"{case.method} {case.formatted_path} {case.body!r}\n{crash}")
    case.validate_response(response, checks=_api_checks(), headers=headers)
    return response


def _drive(app, strategy, headers):
    @FEW
    @given(case=strategy)
    def run(case):
        _call_and_validate(app, case, headers)

    run()


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzz_api_from_its_openapi_document(app, api, mode):
    from schemathesis import GenerationMode

    schema, headers = api
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {(o.method.upper(), "/api/v1" + o.path) for o in operations}
    documented.discard(("GET", "/api/v1/openapi.json"))  # the document itself
    served = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") and rule.endpoint != "api.openapi"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == documented, "the OpenAPI document and the API's routes differ"
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=GenerationMode(mode))
        _drive(app, strategy, headers)


JSON_VALUE = st.one_of(
    TEXT,
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _json_fuzzed(base: dict, fields: dict):
    """``base`` with some fields replaced (by the field's strategy or any JSON) or dropped."""
    replaced = {name: st.one_of(s, JSON_VALUE, st.just(None)) for name, s in fields.items()}
    return st.builds(
        lambda changes, drop: {k: v for k, v in {**base, **changes}.items() if k not in drop},
        st.fixed_dictionaries({}, optional=replaced),
        st.sets(st.sampled_from(sorted(base)), max_size=2),
    )


def test_fuzz_api_with_mostly_valid_bodies(app, world, api):
    """Random generation rarely makes a valid invoice; these reach 200, 201 and 409 too."""
    schema, headers = api
    number = st.one_of(
        st.sampled_from(["55555555", "55555556"]), st.integers(10**7, 10**8 - 1).map(str)
    )
    invoices = st.builds(
        lambda body, n: {**body, "number": n} if body.get("number") == "12345678" else body,
        _json_fuzzed(approval(), APPROVE_FIELDS),
        number,
    )
    existing = world.first.invoice_key.split("-")[1]
    lookup = {
        "code": BEIJING_CODE,
        "number": existing,
        "issue_date": "2026-05-01",
        "amount": "100.00",
        "total": "106.00",
        "check_code_last6": CHECK_CODE[-6:],
    }
    lookups = _json_fuzzed(lookup, {**APPROVE_FIELDS, "check_code_last6": CHECK})
    create = schema["/invoices"]["POST"]
    read = schema["/invoices/{key}"]["GET"]
    ask = schema["/lookup"]["POST"]
    seen = set()

    @FUZZ
    @given(
        invoice=invoices, question=lookups, key=st.one_of(st.just(world.first.invoice_key), TEXT)
    )
    def run(invoice, question, key):
        seen.add(_call_and_validate(app, create.Case(body=invoice), headers).status_code)
        seen.add(_call_and_validate(app, ask.Case(body=question), headers).status_code)
        # Given path parameters are sent as they are: quote them as a client must.
        _call_and_validate(app, read.Case(path_parameters={"key": ref_in_url(key)}), headers)

    run()
    assert seen & {200, 201}, f"the mostly-valid bodies never succeeded: {seen}"
