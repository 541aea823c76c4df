"""Registration, sign-in and sign-out through the real forms."""

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Notification, User
from tests.conftest import csrf_token_from


def test_register_creates_an_unverified_customer_and_mails_the_link(app, auth, client):
    response = auth.register("NEW@Example.com", verify=False, login=False)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert "我们已向" in client.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.email == "new@example.com" and user.role == "customer"
        assert user.password_hash != "Gao-Shan-Liu-Shui-42"
        assert user.email_verified_at is None
        assert db.session.scalar(select(Notification.kind)) == "verify_email"
        actions = set(db.session.scalars(select(AuditEvent.action)))
        assert actions == {"user.registered"}
    assert auth.login("new@example.com").status_code == 302  # signing in needs no link
    assert "new@example.com" in client.get("/").get_data(as_text=True)
    auth.verify("new@example.com")
    with app.app_context():
        assert db.session.scalar(select(User.email_verified_at)) is not None


def test_weak_password_is_refused_beside_the_field(ctx, auth):
    response = auth.register(password="password123")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "太常见" in html and 'aria-invalid="true"' in html
    assert db.session.scalar(select(User)) is None


def test_short_password_is_refused(auth):
    html = auth.register(password="Short-1").get_data(as_text=True)
    assert "至少" in html and "10" in html


def test_a_taken_email_creates_nothing_and_its_holder_is_told_by_mail(app, auth):
    auth.register("dup@example.com")
    auth.logout()
    response = auth.register("DUP@example.com", login=False)
    assert response.status_code == 302  # the same answer as for a new address
    with app.app_context():
        assert len(db.session.scalars(select(User)).all()) == 1
        kinds = db.session.scalars(select(Notification.kind).order_by(Notification.id)).all()
        assert kinds == ["verify_email", "account_exists"]


def test_malformed_email_is_refused(auth):
    html = auth.register("not-an-email").get_data(as_text=True)
    assert "有效的电子邮箱" in html


def test_mismatched_confirmation_is_refused(auth):
    response = auth.post_form(
        "/auth/register",
        {"email": "a@example.com", "password": "Gao-Shan-Liu-Shui-42", "confirm": "other-thing-99"},
    )
    assert "两次输入的密码不一致" in response.get_data(as_text=True)


def test_login_and_logout(auth, client):
    auth.register()
    auth.logout()
    assert "kehu@example.com" not in client.get("/").get_data(as_text=True)
    response = auth.login()
    assert response.status_code == 302
    assert "kehu@example.com" in client.get("/").get_data(as_text=True)
    auth.logout()
    assert "kehu@example.com" not in client.get("/").get_data(as_text=True)


def test_failed_login_does_not_reveal_whether_the_email_exists(auth):
    auth.register()
    auth.logout()
    wrong_password = auth.login(password="not-the-password-0").get_data(as_text=True)
    unknown_email = auth.login(email="nobody@example.com").get_data(as_text=True)
    message = "电子邮箱或密码不正确"
    assert message in wrong_password and message in unknown_email


def test_login_starts_a_new_session(auth, client):
    auth.register()
    auth.logout()
    with client.session_transaction() as session:
        session["planted"] = "by-an-attacker"
    auth.login()
    with client.session_transaction() as session:
        assert "planted" not in session


def test_remember_me_sets_a_lasting_cookie(auth, client):
    auth.register()
    auth.logout()
    auth.login(remember=True)
    assert client.get_cookie("remember_token") is not None


def test_disabled_user_cannot_sign_in(app, auth):
    auth.register()
    auth.logout()
    with app.app_context():
        user = db.session.scalar(select(User))
        user.active = False
        db.session.commit()
    assert "电子邮箱或密码不正确" in auth.login().get_data(as_text=True)


def test_post_without_csrf_token_is_refused(app, client):
    response = client.post(
        "/auth/register",
        data={
            "email": "x@example.com",
            "password": "Gao-Shan-Liu-Shui-42",
            "confirm": "Gao-Shan-Liu-Shui-42",
        },
    )
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User)) is None


def test_open_redirect_after_login_is_refused(auth, client):
    auth.register()
    auth.logout()
    page = client.get("/auth/login?next=https://evil.example/")
    from tests.conftest import csrf_token_from

    response = client.post(
        "/auth/login?next=https://evil.example/",
        data={
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
            "email": "kehu@example.com",
            "password": "Gao-Shan-Liu-Shui-42",
        },
    )
    assert response.headers["Location"] == "/"


def test_login_is_rate_limited(app_factory):
    app = app_factory(RATELIMIT_LOGIN="3 per minute")
    from tests.conftest import AuthActions

    actions = AuthActions(app.test_client())
    codes = [actions.login(password=f"wrong-{i}-xxxxxxx").status_code for i in range(4)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429


def test_staff_accounts_only_from_the_cli(ctx, runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "shenhe@example.com",
            "--role",
            "reviewer",
            "--password",
            "Gao-Shan-Liu-Shui-42",
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User))
    assert user.role == "reviewer" and user.is_staff


def test_cli_refuses_weak_password_clearly(runner):
    result = runner.invoke(
        args=["users", "create", "--email", "s@example.com", "--password", "12345678901"]
    )
    assert result.exit_code != 0 and "Error" in result.output


def test_idle_sessions_end(app, auth, client):
    auth.register()
    with client.session_transaction() as session:
        session["seen_at"] -= app.config["SESSION_IDLE_MINUTES"] * 60 + 5
    response = client.get("/cases")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert "kehu@example.com" not in client.get("/").get_data(as_text=True)


def test_sessions_end_after_the_absolute_limit_even_when_active(app, auth, client):
    auth.register()
    with client.session_transaction() as session:
        session["started_at"] -= app.config["SESSION_ABSOLUTE_HOURS"] * 3600 + 5
    assert client.get("/cases").status_code == 302


def test_logout_ends_the_session_on_the_server(app, auth, client):
    auth.register()
    with client.session_transaction() as session:
        stolen = dict(session)  # a copy of the cookie, as an attacker might hold
    auth.logout()
    thief = app.test_client()
    with thief.session_transaction() as session:
        session.update(stolen)
    response = thief.get("/cases")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_an_account_is_locked_after_repeated_failures(app_factory):
    app = app_factory(LOGIN_FAILURES_BEFORE_LOCK=3)
    from tests.conftest import AuthActions

    actions = AuthActions(app.test_client())
    actions.register()
    actions.logout()
    for _ in range(3):
        assert actions.login(password="wrong-password-000").status_code == 200
    locked = actions.login()  # even the right password waits now
    assert locked.status_code == 429 and "尝试次数过多" in locked.get_data(as_text=True)
    # An unknown e-mail is treated the same, so locking reveals nothing.
    for _ in range(3):
        actions.login(email="nobody@example.com", password="wrong-password-000")
    assert actions.login(email="nobody@example.com").status_code == 429


def test_customers_can_turn_off_mail_that_needs_no_action(app, auth, client):
    auth.register()
    page = client.get("/auth/account").get_data(as_text=True)
    assert 'name="optional_mail"' in page and "checked" in page
    client.post("/auth/account", data={"csrf_token": csrf_token_from(page)})
    with app.app_context():
        assert db.session.scalar(select(User.optional_mail)) is False
