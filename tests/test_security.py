"""Issue 16: each attack that gave way, replayed through the web or the API, now refused.

Sections follow the issue's numbering (1–9). Every test drives the real forms (CSRF tokens
included) or the JSON API over the suite's database (SQLite or PostgreSQL) and Redis.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pyotp
import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    Case,
    CaseState,
    Invoice,
    Notification,
    RegistryState,
    ReviewDecision,
    Upload,
    UploadState,
    User,
)
from portal.services import accounts, cases, review, throttle
from portal.support import crypto
from tests import factories
from tests.conftest import TEST_TOTP_SECRET, AuthActions, csrf_token_from

PASSWORD = "Gao-Shan-Liu-Shui-42"
ADMIN = "guanli@example.com"


def post(client, url, data=None, ip="127.0.0.1", page=None):
    """POST a form the way a browser does: its page first (for the CSRF token)."""
    html = client.get(page or url, environ_base={"REMOTE_ADDR": ip}).get_data(as_text=True)
    # The anonymous lookup is a sessionless form: no token on its page.
    token = {"csrf_token": csrf_token_from(html)} if "csrf_token" in html else {}
    fields = {**token, **(data or {})}
    return client.post(url, data=fields, environ_base={"REMOTE_ADDR": ip})


def sign_in(client, email, password=PASSWORD, ip="127.0.0.1"):
    return post(client, "/auth/login", {"email": email, "password": password}, ip=ip)


def stored_user(email) -> User:
    return db.session.scalar(select(User).where(User.email == email))


def mailed(app, kind: str) -> dict:
    """The context of the latest mail of ``kind`` (its links)."""
    with app.app_context():
        row = db.session.scalar(
            select(Notification).where(Notification.kind == kind).order_by(Notification.id.desc())
        )
        assert row is not None, f"no {kind} mail"
        return dict(row.context)


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def code_at(step: int, secret: str = TEST_TOTP_SECRET) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def current_step(secret: str = TEST_TOTP_SECRET) -> int:
    return pyotp.TOTP(secret).timecode(__import__("datetime").datetime.now())


# =============================================================== 1. two-step sign-in


def test_1_setup_is_refused_while_a_code_app_is_on_and_the_secret_stays(app, make_user):
    make_user(ADMIN, "admin")
    attacker = app.test_client()  # holds the admin's e-mail and password, not the phone
    assert sign_in(attacker, ADMIN).headers["Location"].endswith("/auth/2fa")
    page = attacker.get("/auth/2fa/setup")
    assert page.status_code == 302 and page.headers["Location"].endswith("/auth/2fa")
    # Posting a code for a secret of the attacker's own choosing changes nothing either.
    with attacker.session_transaction() as session:
        session["totp_setup_secret"] = own = pyotp.random_base32()
    token = csrf_token_from(attacker.get("/auth/2fa").get_data(as_text=True))
    answer = attacker.post(
        "/auth/2fa/setup", data={"csrf_token": token, "code": pyotp.TOTP(own).now()}
    )
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/auth/2fa")
    assert attacker.get("/staff/users").status_code == 302  # not signed in
    with app.app_context():
        admin = stored_user(ADMIN)
        assert crypto.decrypt_secret(admin.totp_secret) == TEST_TOTP_SECRET
        assert "user.totp_enabled" not in db.session.scalars(select(AuditEvent.action)).all()
    # The real admin's codes still work.
    assert AuthActions(app.test_client()).login(ADMIN).headers["Location"] == "/staff/"


def test_1_a_code_signs_in_once_even_in_another_session(app, make_user):
    make_user(ADMIN, "admin")
    code = code_at(current_step())
    first, second = app.test_client(), app.test_client()
    sign_in(first, ADMIN)
    assert post(first, "/auth/2fa", {"code": code}).headers["Location"] == "/staff/"
    sign_in(second, ADMIN)  # someone who saw the code (shoulder, phishing page) replays it
    replay = post(second, "/auth/2fa", {"code": code})
    assert replay.status_code == 200 and "不正确" in replay.get_data(as_text=True)
    assert second.get("/staff/users").status_code == 302
    # An older code than the last one used is refused too.
    sign_in(second, ADMIN)
    older = post(second, "/auth/2fa", {"code": code_at(current_step() - 1)})
    assert older.status_code == 200


def test_1_secrets_are_encrypted_at_rest(app, make_user):
    make_user("r@example.com", "reviewer")
    staff = AuthActions(app.test_client())
    staff.login("r@example.com")
    page = staff.client.get("/auth/2fa/setup").get_data(as_text=True)
    secret = re.search(r'class="mono break"[^>]*>([A-Z2-7]{16,})<', page).group(1)
    post(staff.client, "/auth/2fa/setup", {"code": pyotp.TOTP(secret).now()})
    with app.app_context():
        stored = stored_user("r@example.com").totp_secret
    assert secret not in stored and stored.startswith("gAAAAA")  # a Fernet token
    with app.app_context():
        assert crypto.decrypt_secret(stored) == secret


def test_1_moving_to_a_new_app_needs_the_current_code(app, make_user):
    make_user(ADMIN, "admin")
    thief = AuthActions(app.test_client())  # a stolen, signed-in session
    thief.login(ADMIN)
    page = thief.client.get("/auth/2fa/setup").get_data(as_text=True)
    assert 'name="current_code"' in page
    secret = re.search(r'class="mono break"[^>]*>([A-Z2-7]{16,})<', page).group(1)
    refused = post(
        thief.client,
        "/auth/2fa/setup",
        {"code": pyotp.TOTP(secret).now(), "current_code": "000000"},
    )
    assert refused.status_code == 200 and 'aria-invalid="true"' in refused.get_data(as_text=True)
    with app.app_context():
        assert crypto.decrypt_secret(stored_user(ADMIN).totp_secret) == TEST_TOTP_SECRET
        # With the current app's code (one not used yet), the move works and is audited.
        unused = AuthActions(thief.client).unused_code(ADMIN)
    moved = post(
        thief.client,
        "/auth/2fa/setup",
        {"code": pyotp.TOTP(secret).now(), "current_code": unused},
    )
    assert moved.status_code == 302
    with app.app_context():
        assert crypto.decrypt_secret(stored_user(ADMIN).totp_secret) == secret
        assert "user.totp_replaced" in db.session.scalars(select(AuditEvent.action)).all()


def test_1_an_admin_resets_a_lost_authenticator_audited(app, make_user):
    make_user(ADMIN, "admin")
    other_id = make_user("admin2@example.com", "admin")
    admin = AuthActions(app.test_client())
    admin.login(ADMIN)
    answer = post(admin.client, f"/staff/users/{other_id}/totp-reset", page="/staff/users")
    assert answer.status_code == 302
    with app.app_context():
        assert stored_user("admin2@example.com").totp_secret is None
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.totp_reset"))
        assert event.actor == ADMIN
    # Their own reset is refused (another admin must do it).
    with app.app_context():
        own_id = stored_user(ADMIN).id
    post(admin.client, f"/staff/users/{own_id}/totp-reset", page="/staff/users")
    with app.app_context():
        assert stored_user(ADMIN).totp_secret is not None


def test_1_the_migration_encrypts_plain_secrets(tmp_path, app_factory):
    """Upgrading a database whose secrets are plain text leaves only Fernet tokens."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from tests.conftest import ROOT

    url = f"sqlite:///{tmp_path / 'old.db'}"
    app = app_factory(SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        migrations = str(ROOT / "migrations")
        upgrade(directory=migrations, revision="530ec45260de")
        db.session.execute(
            text(
                "INSERT INTO users (email, password_hash, role, display_name, active, "
                "optional_mail, totp_secret, session_token, created_at) VALUES "
                "('a@example.com', 'x', 'admin', '', 1, 1, :s, 'tok', '2026-01-01')"
            ),
            {"s": TEST_TOTP_SECRET},
        )
        db.session.commit()
        upgrade(directory=migrations)
        stored = db.session.execute(text("SELECT totp_secret FROM users")).scalar()
        assert stored != TEST_TOTP_SECRET and crypto.decrypt_secret(stored) == TEST_TOTP_SECRET
        downgrade(directory=migrations, revision="530ec45260de")
        plain = db.session.execute(text("SELECT totp_secret FROM users")).scalar()
        assert plain == TEST_TOTP_SECRET


# ============================================================================ 2. four eyes

APPROVED = {
    "code": "011001900111",
    "number": "12345678",
    "kind": "",
    "issue_date": "2026-05-01",
    "amount": "188679.25",
    "tax": "11320.75",
    "total": "200000.00",
    "check_code": "65431824771847114698",
    "buyer_tax_id": "911101017967003199",
    "buyer_name": "北京示例科技有限公司",
    "seller_tax_id": "91320621MA1MRHG205",
}
SWAPPED = APPROVED | {
    "amount": "9433961.32",
    "tax": "566037.68",
    "total": "9999999.00",
    "buyer_name": "另一家公司",
}


@pytest.fixture
def supervisors(app, make_user):
    make_user("s1@example.com", "supervisor")
    make_user("s2@example.com", "supervisor")
    with app.app_context():
        ref = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=None
        ).reference
    first, second = AuthActions(app.test_client()), AuthActions(app.test_client())
    first.login("s1@example.com")
    second.login("s2@example.com")
    post(first.client, f"/staff/cases/{ref}/claim", page=f"/staff/cases/{ref}")
    return first.client, second.client, ref


def test_2_a_second_approval_confirms_only_the_decision_it_was_shown(app, supervisors):
    first, second, ref = supervisors
    page_url = f"/staff/cases/{ref}"
    post(first, f"{page_url}/approve", APPROVED, page=page_url)
    shown = second.get(page_url).get_data(as_text=True)
    assert "200000.00" in shown and "北京示例科技有限公司" in shown  # the fields it confirms
    decision_id = re.search(r'name="decision_id" type="hidden" value="(\d+)"', shown).group(1)
    digest = re.search(r'name="digest" type="hidden" value="([0-9a-f]{64})"', shown).group(1)
    # Supervisor 1 approves again with other fields while one is pending: refused.
    swapped = post(first, f"{page_url}/approve", SWAPPED, page=page_url)
    assert swapped.status_code == 302
    assert "请先撤回该批准" in first.get(page_url).get_data(as_text=True)
    with app.app_context():
        assert len(db.session.scalars(select(ReviewDecision)).all()) == 1
    # Supervisor 1 withdraws and approves the swapped fields; supervisor 2 confirms what
    # they saw: refused, because the pending decision is another one.
    post(first, f"{page_url}/withdraw_approval", page=page_url)
    post(first, f"{page_url}/approve", SWAPPED, page=page_url)
    token = csrf_token_from(shown)
    stale = second.post(
        f"{page_url}/confirm",
        data={"csrf_token": token, "decision_id": decision_id, "digest": digest},
        follow_redirects=True,
    )
    assert "已不是您确认的那一项" in stale.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Invoice)) is None  # nothing re-entered
        assert db.session.scalar(select(Case.state)) == CaseState.IN_REVIEW


def test_2_a_confirm_with_another_digest_or_none_is_refused(app, supervisors):
    first, second, ref = supervisors
    page_url = f"/staff/cases/{ref}"
    post(first, f"{page_url}/approve", APPROVED, page=page_url)
    shown = second.get(page_url).get_data(as_text=True)
    decision_id = re.search(r'name="decision_id" type="hidden" value="(\d+)"', shown).group(1)
    for data in ({"decision_id": decision_id, "digest": "0" * 64}, {}):
        post(second, f"{page_url}/confirm", data, page=page_url)
        with app.app_context():
            assert db.session.scalar(select(Invoice)) is None
    digest = re.search(r'name="digest" type="hidden" value="([0-9a-f]{64})"', shown).group(1)
    post(
        second, f"{page_url}/confirm", {"decision_id": decision_id, "digest": digest}, page=page_url
    )
    with app.app_context():
        assert db.session.scalar(select(Invoice.total)) == Decimal("200000.00")


# ================================================= 3. the approved identity is the case's


def _claimed_case(app, reviewer_email="r@example.com") -> tuple[str, str]:
    """A case about invoice A claimed by the reviewer, and invoice B registered in the ledger."""
    with app.app_context():
        (other,) = factories.issued(number="87654321")
        other.registry_state, other.registry_id = RegistryState.REGISTERED, "REG-B"
        db.session.commit()
        case = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=None
        )
        review.claim(case, stored_user(reviewer_email))
        return case.reference, other.key


def test_3_approving_another_invoices_key_is_refused_and_b_is_untouched(app, make_user):
    make_user("r@example.com", "reviewer")
    ref, other_key = _claimed_case(app)
    reviewer = AuthActions(app.test_client())
    reviewer.login("r@example.com")
    page_url = f"/staff/cases/{ref}"
    rewrite = APPROVED | {"number": "87654321", "amount": "0.94", "tax": "0.06", "total": "1.00"}
    answer = post(reviewer.client, f"{page_url}/approve", rewrite, page=page_url)
    assert answer.status_code == 422  # said beside the invoice number, the input kept
    assert "不是报告中的发票" in answer.get_data(as_text=True)
    with app.app_context():
        other = db.session.scalar(select(Invoice).where(Invoice.key == other_key))
        assert other.total == Decimal("106.00") and other.registry_state == "registered"
        assert db.session.scalar(select(ReviewDecision)) is None
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert "invoice.corrected" not in actions


def test_3_another_invoice_on_purpose_waits_for_a_second_supervisor(app, make_user):
    make_user("r@example.com", "reviewer")
    make_user("s@example.com", "supervisor")
    ref, other_key = _claimed_case(app)
    reviewer = AuthActions(app.test_client())
    reviewer.login("r@example.com")
    page_url = f"/staff/cases/{ref}"
    rewrite = APPROVED | {"number": "87654321", "amount": "0.94", "tax": "0.06", "total": "1.00"}
    post(reviewer.client, f"{page_url}/approve", {**rewrite, "other_invoice": "y"}, page=page_url)
    with app.app_context():
        decision = db.session.scalar(select(ReviewDecision))
        assert decision.awaiting_second
        assert decision.second_reasons == ["identity", "registered_change"]
        assert db.session.scalar(select(Invoice.total).where(Invoice.key == other_key)) == Decimal(
            "106.00"
        )
    boss = AuthActions(app.test_client())
    boss.login("s@example.com")
    shown = boss.client.get(page_url).get_data(as_text=True)
    assert "批准的发票不是报告中的那张" in shown and "修改已登记的发票" in shown
    digest = re.search(r'name="digest" type="hidden" value="([0-9a-f]{64})"', shown).group(1)
    post(
        boss.client,
        f"{page_url}/confirm",
        {"decision_id": str(decision.id), "digest": digest},
        page=page_url,
    )
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert "case.identity_corrected" in actions and "invoice.corrected" in actions


def test_3_changing_a_ledger_invoice_needs_four_eyes_whatever_the_amount(app, make_user):
    make_user("r@example.com", "reviewer")
    with app.app_context():
        factories.issued(number="12345678", buyer_name="打错的名字")
        case = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=None
        )
        review.claim(case, stored_user("r@example.com"))
        small = APPROVED | {"amount": "100.00", "tax": "6.00", "total": "106.00"}
        decision = review.approve(case, stored_user("r@example.com"), small)
        assert decision.awaiting_second and decision.second_reasons == ["ledger_change"]
        assert db.session.scalar(select(Invoice.buyer_name)) == "打错的名字"


# ================================================================== 4. sign-in throttling


@pytest.fixture
def owner(app, auth):
    auth.register("owner@example.com")
    auth.logout()
    return "owner@example.com"


def test_4_the_lock_keys_on_the_normalised_account(app, app_factory):
    app = app_factory(LOGIN_FAILURES_BEFORE_LOCK=3)
    AuthActions(app.test_client()).register("user@example.com", login=False)
    attacker = app.test_client()
    for _ in range(3):
        sign_in(attacker, "user@example.com", "wrong-password-000")
    for spelling in (" user@example.com", "USER@Example.com", "  user@example.com  "):
        locked = sign_in(attacker, spelling)  # the right password, written differently
        assert locked.status_code == 429, spelling
    assert attacker.get("/cases").status_code == 302


def test_4_an_attacker_elsewhere_cannot_lock_the_owner_out(app, app_factory):
    app = app_factory(LOGIN_FAILURES_BEFORE_LOCK=3)
    AuthActions(app.test_client()).register("admin-like@example.com", login=False)
    attacker = app.test_client()
    for _ in range(10):
        sign_in(attacker, "admin-like@example.com", "wrong-password-000", ip="203.0.113.9")
    assert sign_in(attacker, "admin-like@example.com", ip="203.0.113.9").status_code == 429
    owner = app.test_client()
    assert sign_in(owner, "admin-like@example.com", ip="198.51.100.7").status_code == 302


def test_4_delays_grow_with_each_further_failure(app, app_factory, monkeypatch):
    app = app_factory(LOGIN_FAILURES_BEFORE_LOCK=2, LOGIN_DELAY_SECONDS=60)
    AuthActions(app.test_client()).register("user@example.com", login=False)
    now = [1_000_000.0]
    monkeypatch.setattr(throttle, "_clock", lambda: now[0])
    client = app.test_client()
    for _ in range(2):
        sign_in(client, "user@example.com", "wrong-password-000")
    assert sign_in(client, "user@example.com").status_code == 429  # 60 s from now
    now[0] += 61
    sign_in(client, "user@example.com", "wrong-password-000")  # the third: 120 s
    now[0] += 61
    assert sign_in(client, "user@example.com").status_code == 429
    now[0] += 60
    assert sign_in(client, "user@example.com").status_code == 302


def test_4_the_soft_limit_slows_strangers_but_not_the_owners_browser(app, app_factory):
    app = app_factory(LOGIN_ACCOUNT_SOFT_LIMIT=5, LOGIN_FAILURES_BEFORE_LOCK=3)
    owner = AuthActions(app.test_client())
    owner.register("boss@example.com")  # this browser has signed in: a known browser
    owner.logout()
    botnet = app.test_client()
    for n in range(6):  # from six addresses, each below its own lock
        sign_in(botnet, "boss@example.com", "wrong-password-000", ip=f"203.0.113.{n}")
    stranger = sign_in(app.test_client(), "boss@example.com", ip="198.51.100.1")
    assert stranger.status_code == 429
    assert sign_in(owner.client, "boss@example.com", ip="198.51.100.2").status_code == 302


def test_4_the_owner_resets_the_password_by_mail_and_the_link_works_once(app, app_factory):
    app = app_factory(LOGIN_FAILURES_BEFORE_LOCK=3, LOGIN_ACCOUNT_SOFT_LIMIT=3)
    AuthActions(app.test_client()).register("user@example.com", login=False)
    attacker = app.test_client()
    for n in range(5):
        sign_in(attacker, "user@example.com", "wrong-password-000", ip=f"203.0.113.{n}")
    owner = app.test_client()  # a new phone: held back by the soft limit
    assert sign_in(owner, "user@example.com", ip="198.51.100.1").status_code == 429
    answer = post(owner, "/auth/reset", {"email": " User@Example.com"}, ip="198.51.100.1")
    assert answer.status_code == 302
    link = path_of(mailed(app, "password_reset")["reset_url"])
    new = {"password": "Xin-Mi-Ma-Hen-Chang-7", "confirm": "Xin-Mi-Ma-Hen-Chang-7"}
    assert post(owner, link, new, ip="198.51.100.1").status_code == 302
    signed = sign_in(owner, "user@example.com", "Xin-Mi-Ma-Hen-Chang-7", ip="198.51.100.1")
    assert signed.status_code == 302
    again = app.test_client().get(link)
    assert again.status_code == 400 and "已经使用过" in again.get_data(as_text=True)
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert "user.password_reset" in actions


def test_4_a_reset_link_expires_and_cannot_be_forged(app, app_factory):
    app = app_factory(PASSWORD_RESET_MAX_AGE=-1)
    AuthActions(app.test_client()).register("user@example.com", login=False)
    client = app.test_client()
    post(client, "/auth/reset", {"email": "user@example.com"})
    link = path_of(mailed(app, "password_reset")["reset_url"])
    expired = client.get(link)
    assert expired.status_code == 400 and "已过期" in expired.get_data(as_text=True)
    forged = client.get(link[:-3] + "abc")
    assert forged.status_code == 400 and "无效" in forged.get_data(as_text=True)


def test_4_asking_for_a_reset_does_not_reveal_accounts(app, owner):
    known = post(app.test_client(), "/auth/reset", {"email": owner}, ip="10.0.0.1")
    unknown = post(app.test_client(), "/auth/reset", {"email": "no@example.com"}, ip="10.0.0.2")
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"]
    with app.app_context():
        recipients = db.session.scalars(
            select(Notification.recipient).where(Notification.kind == "password_reset")
        ).all()
        assert recipients == [owner]


# ======================================================== 5. verified e-mail addresses


def _counter_case(app, make_user, email) -> str:
    make_user("r@example.com", "reviewer")
    staff = AuthActions(app.test_client())
    staff.login("r@example.com")
    answer = post(
        staff.client,
        "/staff/cases/new",
        {
            "channel": "counter",
            "contact_email": email,
            "contact_phone": "13800000000",
            "code": "011001900111",
            "number": "12345678",
            "issue_date": "2026-05-01",
            "description": "客户在柜台说：电话 13800000000",
        },
    )
    assert answer.status_code == 302
    with app.app_context():
        return db.session.scalar(select(Case.reference))


def test_5_an_unverified_account_does_not_capture_a_staff_opened_case(app, make_user):
    attacker = AuthActions(app.test_client())
    attacker.register("victim@example.com", verify=False)  # someone else's address
    ref = _counter_case(app, make_user, "victim@example.com")
    assert ref not in attacker.client.get("/cases").get_data(as_text=True)
    assert attacker.client.get(f"/cases/{ref}").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(Case.customer_id)) is None  # it waits
    # Only someone with both the mailbox (the link) and the password can confirm; then the
    # case attaches.
    holder = AuthActions(app.test_client())
    holder.verify("victim@example.com")
    holder.login("victim@example.com")
    assert ref in holder.client.get("/cases").get_data(as_text=True)
    with app.app_context():
        assert "case.attached" in db.session.scalars(select(AuditEvent.action)).all()


def test_5_a_verified_account_gets_staff_opened_cases_at_once(app, make_user):
    customer = AuthActions(app.test_client())
    customer.register("walkin@example.com")
    ref = _counter_case(app, make_user, "WalkIn@example.com")
    assert ref in customer.client.get("/cases").get_data(as_text=True)


def test_5_buyer_invitations_need_a_verified_address(app, make_user):
    from portal.services import buyers

    make_user("r@example.com", "reviewer")
    with app.app_context():
        _link, token = buyers.invite(
            stored_user("r@example.com"), "victim@example.com", "911101017967003199", "北京示例"
        )
    attacker = AuthActions(app.test_client())
    attacker.register("victim@example.com", verify=False)
    refused = post(attacker.client, f"/buyers/invitations/{token}")
    assert "请先确认您的电子邮箱" in refused.get_data(as_text=True)
    with app.app_context():
        from portal.models import BuyerLink

        assert db.session.scalar(select(BuyerLink.state)) == "invited"


def test_5_a_tampered_verification_link_is_refused(app):
    AuthActions(app.test_client()).register("new@example.com", verify=False, login=False)
    link = path_of(mailed(app, "verify_email")["verify_url"])
    client = app.test_client()
    answer = post(client, link[:-2] + "xx", page=link)
    assert answer.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(User.email_verified_at)) is None
    assert post(client, link, {"password": PASSWORD}).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(User.email_verified_at)) is not None


def test_5_the_mailbox_holder_cannot_confirm_an_account_someone_else_registered(app, make_user):
    attacker = AuthActions(app.test_client())
    attacker.register("victim@example.com", "Attacker-Chose-This-9", verify=False)
    ref = _counter_case(app, make_user, "victim@example.com")
    link = path_of(mailed(app, "verify_email")["verify_url"])
    victim = app.test_client()  # reads the mail and opens the link, not knowing the password
    refused = post(victim, link, {"password": "whatever-she-types-1"})
    assert refused.status_code == 200 and 'aria-invalid="true"' in refused.get_data(as_text=True)
    assert ref not in attacker.client.get("/cases").get_data(as_text=True)
    # Taking the account over with a password reset confirms the address for her instead.
    post(victim, "/auth/reset", {"email": "victim@example.com"})
    reset = path_of(mailed(app, "password_reset")["reset_url"])
    post(victim, reset, {"password": "Her-Own-Password-77", "confirm": "Her-Own-Password-77"})
    assert attacker.client.get("/cases").status_code == 302  # the attacker's session ended
    assert (
        sign_in(app.test_client(), "victim@example.com", "Attacker-Chose-This-9").status_code == 200
    )
    mine = app.test_client()
    sign_in(mine, "victim@example.com", "Her-Own-Password-77")
    assert ref in mine.get("/cases").get_data(as_text=True)


def test_5_the_verification_mail_can_be_sent_again(app):
    customer = AuthActions(app.test_client())
    customer.register("new@example.com", verify=False)
    post(customer.client, "/auth/verify", page="/auth/account")
    with app.app_context():
        kinds = db.session.scalars(select(Notification.kind)).all()
        assert kinds == ["verify_email", "verify_email"]


# ============================================= 6. the per-invoice daily limit and holders

HOLDER_FIELDS = {"code": "011001900111", "issue_date": "2026-05-01", "check_code_last6": "114698"}


def look_up(client, ip="127.0.0.1", **fields):
    return post(client, "/lookup", fields, ip=ip)


def finding_codes(response) -> list[str]:
    return re.findall(r'class="finding finding-([a-z_]+)"', response.get_data(as_text=True))


def test_6_anyones_failed_lookups_never_refuse_the_holder(app, app_factory, registry_sim):
    app = app_factory(REGISTRY_URL=registry_sim.url)
    with app.app_context():
        (invoice,) = factories.issued(check_code="65431824771847114698")
        number = invoice.number
    attacker = app.test_client()
    for _ in range(6):
        look_up(
            attacker,
            ip="203.0.113.5",
            number=number,
            **HOLDER_FIELDS | {"issue_date": "2026-01-01"},
        )
    assert "今天已用不一致的信息" in look_up(
        attacker, ip="203.0.113.5", number=number, **HOLDER_FIELDS
    ).get_data(as_text=True)  # the attacker, even with the right fields, learns nothing
    holder = AuthActions(app.test_client())
    holder.register("holder@example.com")
    answer = look_up(holder.client, ip="203.0.113.5", number=number, **HOLDER_FIELDS)
    assert finding_codes(answer) == ["pending_registry"]  # signed in, the same address even
    anonymous = look_up(app.test_client(), ip="198.51.100.3", number=number, **HOLDER_FIELDS)
    assert finding_codes(anonymous) == ["pending_registry"]


def test_6_the_api_holder_is_not_refused_for_others_failures(app, app_factory, registry_sim):
    app = app_factory(REGISTRY_URL=registry_sim.url)
    with app.app_context():
        (invoice,) = factories.issued(check_code="65431824771847114698")
        number = invoice.number
        holder = accounts.create_user("app@example.com", PASSWORD, "customer")
        token = accounts.issue_api_token(holder, "app")
    client = app.test_client()
    wrong = {"number": number, **HOLDER_FIELDS, "check_code_last6": "000000"}
    for _ in range(6):
        client.post("/api/v1/lookup", json=wrong)  # anonymous: 401, counts nothing
        look_up(client, ip="127.0.0.1", **wrong)  # web failures from the same address
    answer = client.post(
        "/api/v1/lookup",
        json={"number": number, **HOLDER_FIELDS},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200
    assert [f["code"] for f in answer.get_json()["findings"]] == ["pending_registry"]


# ============================================================== 7. strict bearer tokens


def test_7_the_token_limit_keys_on_the_token_however_the_header_is_written(
    app, app_factory, redis_url
):
    app = app_factory(RATELIMIT_LOOKUP_USER="3 per minute", RATELIMIT_STORAGE_URI=redis_url)
    with app.app_context():
        from portal.queue import redis_connection

        redis_connection().flushdb()
        token = accounts.issue_api_token(
            accounts.create_user("app@example.com", PASSWORD, "customer"), "app"
        )
    client = app.test_client()
    body = {"code": "011001900111", "number": "12345678", **HOLDER_FIELDS}
    statuses = [
        client.post("/api/v1/lookup", json=body, headers={"Authorization": header}).status_code
        for header in (f"Bearer {token}", f"bearer {token}", f"BEARER   {token}", f"Bearer {token}")
    ]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer {t} {t}",
        "Bearer {t},",
        "Bearer\t{t}",
        "Basic {t}",
        " Bearer {t}",
        "Bearer {t}\u00a0",
        "Token {t}",
    ],
)
def test_7_anything_but_one_bearer_token_is_a_401(app, client, header):
    with app.app_context():
        token = accounts.issue_api_token(
            accounts.create_user("b@example.com", PASSWORD, "reviewer"), "b"
        )
    answer = client.get(
        "/api/v1/invoices/011001900111-12345678",
        headers={"Authorization": header.format(t=token)},
    )
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")


# =============================================== 8. what sign-in and registration reveal


def test_8_an_unknown_email_costs_one_hash_like_a_known_one(app, owner, monkeypatch):
    """Counted, not timed: each sign-in checks exactly one hash and makes none."""
    made, checked = [], []
    real_check = accounts.check_password_hash
    monkeypatch.setattr(accounts, "generate_password_hash", lambda *a, **k: made.append(a))
    monkeypatch.setattr(
        accounts, "check_password_hash", lambda h, p: checked.append(h) or real_check(h, p)
    )
    for email in ("nobody@example.com", "nobody2@example.com", owner, owner):
        sign_in(app.test_client(), email, "wrong-password-000")
    assert made == [] and len(checked) == 4
    dummy = app.extensions["portal.dummy_password_hash"]
    # The hash compared with for an unknown e-mail costs what a real one does.
    assert dummy.split("$")[0] == app.config["PASSWORD_HASH_METHOD"] == checked[3].split("$")[0]


def test_8_registration_answers_the_same_for_taken_and_new_addresses(app, owner):
    def register(email):
        return post(
            app.test_client(),
            "/auth/register",
            {"email": email, "password": PASSWORD, "confirm": PASSWORD},
        )

    taken, new = register(owner), register("newcomer@example.com")
    assert taken.status_code == new.status_code == 302
    assert taken.headers["Location"] == new.headers["Location"]
    with app.app_context():
        kinds = {
            r.recipient: r.kind
            for r in db.session.scalars(select(Notification).order_by(Notification.id))
        }
        assert kinds[owner] == "account_exists"
        assert kinds["newcomer@example.com"] == "verify_email"


# ==================================================================== 9. smaller things


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/api/v1/lookup"),
        ("POST", "/api/v1/invoices"),
        ("GET", "/"),
        ("GET", "/lookup"),
        ("GET", "/healthz"),
        ("DELETE", "/staff/"),
    ],
)
def test_9_deeply_nested_json_is_a_400_with_a_message(client, method, url):
    """No token, no session: the body alone used to raise RecursionError (a 500)."""
    answer = client.open(url, method=method, data="[" * 100000, content_type="application/json")
    assert answer.status_code == 400
    shown = (
        answer.get_json()["error"]["detail"] if answer.is_json else answer.get_data(as_text=True)
    )
    assert "嵌套层数过多" in shown


def test_9_deeply_nested_json_to_a_form_route_is_a_400_too(client):
    answer = client.post("/auth/login", data="[" * 100000, content_type="application/json")
    assert answer.status_code == 400  # the CSRF check answers first


def test_9_deeply_nested_json_in_a_field_is_a_400_too(app, client):
    with app.app_context():
        token = accounts.issue_api_token(
            accounts.create_user("b@example.com", PASSWORD, "reviewer"), "b"
        )
    nested = '{"number": ' + "[" * 40 + "]" * 40 + "}"
    answer = client.post(
        "/api/v1/lookup",
        data=nested,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 400


def test_9_the_simulator_answers_nested_json_with_a_400(registry_sim):
    import requests

    answer = requests.put(
        f"{registry_sim.url}/v1/invoices/011001900111-12345678",
        data="[" * 100000,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert answer.status_code in (400, 422)


def test_9_api_issue_dates_outside_2000_to_tomorrow_are_refused(app, client):
    from tests.factories import GOOD

    with app.app_context():
        token = accounts.issue_api_token(
            accounts.create_user("b@example.com", PASSWORD, "reviewer"), "b"
        )
    for day in ("0001-01-01", "1999-12-31", "9999-12-31"):
        answer = client.post(
            "/api/v1/invoices",
            json=GOOD | {"issue_date": day},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 422
        assert answer.get_json()["error"]["errors"]["issue_date"]["code"] == "date_out_of_range"
    lookup = client.post(
        "/api/v1/lookup",
        json={
            "code": "011001900111",
            "number": "12345678",
            **HOLDER_FIELDS,
            "issue_date": "0001-01-01",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert lookup.status_code == 422
    assert lookup.get_json()["error"]["errors"]["issue_date"]["code"] == "date_out_of_range"


def test_9_form_and_csv_issue_dates_outside_the_range_are_refused(app, auth, make_user):
    from portal.services import intake
    from tests.factories import GOOD, csv_bytes

    auth.register()
    report = post(
        auth.client,
        "/cases/new",
        {
            "code": "011001900111",
            "number": "12345678",
            "issue_date": "9999-12-31",
            "contact_preference": "email",
        },
    )
    html = report.get_data(as_text=True)
    assert report.status_code == 422 and "不在合理范围内" in html and 'value="9999-12-31"' in html
    tomorrow = (date.today() + timedelta(days=3)).isoformat()
    with app.app_context():
        imported = intake.import_csv(csv_bytes([GOOD | {"issue_date": tomorrow}]))
        assert imported.invalid == 1 and imported.problems[0][1] == "issue_date"
        assert db.session.scalar(select(Case)) is None


def test_9_invitation_links_come_from_public_url_not_the_host_header(app, app_factory, make_user):
    app = app_factory(PUBLIC_URL="https://fapiao.example.com")
    make_user("r@example.com", "reviewer")
    staff = AuthActions(app.test_client())
    staff.client.environ_base["HTTP_HOST"] = "evil.example"  # every request names that host
    staff.login("r@example.com")
    page = staff.client.get("/staff/buyer-links")
    answer = staff.client.post(
        "/staff/buyer-links",
        data={
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
            "email": "kehu@example.com",
            "buyer_tax_id": "911101017967003199",
            "buyer_name": "北京示例",
        },
    )
    html = answer.get_data(as_text=True)
    assert "https://fapiao.example.com/buyers/invitations/" in html
    assert "evil.example" not in html


def test_9_single_use_links_are_masked_in_the_mail_viewer(app, app_factory, make_user, tmp_path):
    from portal.services import account_links, notify
    from tests.factories import run_workers

    app = app_factory(MAIL_URL=f"file://{tmp_path / 'mail'}")
    make_user("r@example.com", "reviewer")
    with app.app_context():
        customer = accounts.create_user("c@example.com", PASSWORD, "customer")
        account_links.request_password_reset("c@example.com")
        case = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=customer
        )
        notify.case_resolved(case, "REG-1")
        db.session.commit()
        run_workers()
    staff = AuthActions(app.test_client())
    staff.login("r@example.com")
    listing = staff.client.get("/staff/mail").get_data(as_text=True)
    names = re.findall(r'href="/staff/mail/([^"]+)"', listing)
    texts = [staff.client.get(f"/staff/mail/{name}").get_data(as_text=True) for name in names]
    assert len(texts) == 3  # opened, reset, resolved
    assert sum("••••••" in text for text in texts) == 2  # the reset link, the rating links
    for text in texts:
        assert not re.search(r"/(rate|auth/reset)/[A-Za-z0-9_\-.]{10,}", text)


def test_9_refused_files_are_never_served_to_customers_only_to_staff_as_attachments(
    app, auth, make_user
):
    from portal.services import evidence

    auth.register()
    with app.app_context():
        customer = stored_user("kehu@example.com")
        case = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=customer
        )
        upload = evidence.add_upload(
            case, customer, "x.pdf", b"%PDF-1.7\n/JavaScript (app.alert(1))"
        )
        upload.state, upload.error = UploadState.FAILED, "pdf_active_content"
        db.session.commit()
        upload_id = upload.id
    assert auth.client.get(f"/evidence/{upload_id}/original").status_code == 404
    make_user("r@example.com", "reviewer")
    staff = AuthActions(app.test_client())
    staff.login("r@example.com")
    served = staff.client.get(f"/evidence/{upload_id}/original")
    assert served.status_code == 200
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in served.headers["Content-Security-Policy"]
    with app.app_context():
        assert db.session.get(Upload, upload_id).state == UploadState.FAILED


def test_9_behind_trusted_proxies_per_ip_limits_count_clients(app, app_factory, redis_url):
    def attempt(app, client_address):
        """A wrong sign-in from ``client_address`` arriving through the balancer 10.0.0.1."""
        client, environ = app.test_client(), {"REMOTE_ADDR": "10.0.0.1"}
        headers = {"X-Forwarded-For": client_address}
        page = client.get("/auth/login", environ_base=environ, headers=headers)
        data = {
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
            "email": "x@example.com",
            "password": "wrong-password-000",
        }
        return client.post("/auth/login", data=data, environ_base=environ, headers=headers)

    limited = {"RATELIMIT_LOGIN": "2 per minute", "RATELIMIT_STORAGE_URI": redis_url}
    behind = app_factory(TRUSTED_PROXIES=1, **limited)
    clients = ["1.1.1.1", "2.2.2.2", "3.3.3.3"]
    # Three clients behind one balancer: each has its own budget.
    assert [attempt(behind, c).status_code for c in clients] == [200, 200, 200]
    with behind.app_context():
        from portal.queue import redis_connection

        redis_connection().flushdb()
    # Without the setting, the header is the client's own invention and ignored: one budget.
    direct = app_factory(**limited)
    assert [attempt(direct, c).status_code for c in clients] == [200, 200, 429]


def test_1_rotating_the_totp_key_keeps_every_secret(app_factory, app, make_user, runner):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = app_factory(TOTP_ENCRYPTION_KEY=old)
    with before.app_context():
        user = accounts.create_user("a@example.com", PASSWORD, "admin")
        user.totp_secret = crypto.encrypt_secret(TEST_TOTP_SECRET)
        db.session.commit()
    after = app_factory(TOTP_ENCRYPTION_KEY=f"{new},{old}")
    result = after.test_cli_runner().invoke(args=["users", "rotate-totp-key"])
    assert result.exit_code == 0 and "re-encrypted 1" in result.output
    only_new = app_factory(TOTP_ENCRYPTION_KEY=new)
    with only_new.app_context():
        assert crypto.decrypt_secret(stored_user("a@example.com").totp_secret) == TEST_TOTP_SECRET
