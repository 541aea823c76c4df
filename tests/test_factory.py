"""The app factory and configuration."""

import pytest

from portal import create_app
from portal.config import ConfigError, load_config


def test_testing_config_is_applied(app):
    assert app.testing
    assert app.config["ENV_NAME"] == "testing"


def test_overrides_win(app_factory):
    app = app_factory(MAX_CONTENT_LENGTH=123)
    assert app.config["MAX_CONTENT_LENGTH"] == 123


def test_production_refuses_to_start_without_secret_key(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://localhost/x")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production")


def _production_environment(monkeypatch):
    from cryptography.fernet import Fernet

    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("DATABASE_URL", "postgres://db.internal/portal")
    monkeypatch.setenv("PUBLIC_URL", "https://fapiao.example.com")
    monkeypatch.setenv("TOTP_ENCRYPTION_KEY", Fernet.generate_key().decode())


def test_production_reads_secrets_from_environment(monkeypatch):
    _production_environment(monkeypatch)
    settings = load_config("production")
    assert settings["SECRET_KEY"] == "from-the-environment"
    # Heroku-style URLs are accepted and normalised for SQLAlchemy 2.
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql://db.internal/portal"
    assert settings["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("missing", ["PUBLIC_URL", "TOTP_ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_public_url_or_totp_key(monkeypatch, missing):
    _production_environment(monkeypatch)
    monkeypatch.delenv(missing)
    with pytest.raises(RuntimeError, match=missing):
        load_config("production")


def test_production_refuses_a_totp_key_that_is_the_secret_key(monkeypatch):
    _production_environment(monkeypatch)
    monkeypatch.setenv("TOTP_ENCRYPTION_KEY", "from-the-environment")
    with pytest.raises(RuntimeError, match="must not be the SECRET_KEY"):
        load_config("production")


def test_a_malformed_totp_key_stops_the_app_at_start(app_factory):
    with pytest.raises(RuntimeError, match="Fernet keys"):
        app_factory(TOTP_ENCRYPTION_KEY="not-a-fernet-key")


def test_unknown_environment_is_refused():
    with pytest.raises(RuntimeError, match="unknown PORTAL_ENV"):
        load_config("staging-ish")


def test_development_keeps_a_generated_secret_key_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'dev.db'}")
    first = create_app("development").config["SECRET_KEY"]
    second = create_app("development").config["SECRET_KEY"]
    assert first == second and len(first) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_import_connects_to_nothing():
    # Building the app must not touch the database or Redis (both are unreachable here).
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        }
    )
    assert app.name == "portal"


def test_security_headers_on_pages(client):
    response = client.get("/auth/login")  # a page with a token of its visitor's own
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP: no HSTS


def test_security_headers_on_errors_over_https_once_each(client):
    response = client.get("/no-such-page", base_url="https://portal.example")
    assert response.status_code == 404
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    for name in ("Content-Security-Policy", "X-Frame-Options", "Cache-Control"):
        assert len(response.headers.getlist(name)) == 1, name


def test_static_files_keep_their_own_caching(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    response.close()


def test_not_found_page_is_inside_the_layout(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "页面不存在" in html and 'class="site-header"' in html


def test_unexpected_error_renders_the_500_page(app_factory):
    app = app_factory()

    @app.route("/boom")
    def boom():
        raise RuntimeError("kaboom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "kaboom" not in html and 'class="site-header"' in html


def test_healthz_is_liveness_only(client, app):
    """The process and the database: a registry that is down does not take the host out of a
    load balancer (tests/test_sick_dependencies.py has the rest)."""
    app.config["REGISTRY_URL"] = "http://127.0.0.1:1"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert set(response.get_json()["checks"]) == {"database"}


def test_the_app_is_stock_flask_with_stock_sessions_and_hooks(app):
    """No subclass of Flask, no session interface of our own, and the extensions' hooks as
    they register them (Flask-WTF's CSRF check runs before every request)."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    assert type(app) is Flask
    assert type(app.session_interface) is SecureCookieSessionInterface
    hooks = [hook.__qualname__ for hook in app.before_request_funcs[None]]
    assert any("CSRFProtect" in name for name in hooks)


def test_sessions_follow_a_rotated_secret_key(app):
    """The session serializer is kept between requests, but not across a key change."""
    client = app.test_client()
    client.get("/auth/login")  # a session with a CSRF token
    old_key = app.secret_key
    with client.session_transaction() as session:
        session["marker"] = "kept"
    app.config.update(SECRET_KEY="a-new-key-for-the-test", SECRET_KEY_FALLBACKS=[old_key])
    with client.session_transaction() as session:
        assert session.get("marker") == "kept"  # signed with the old key, still accepted
    app.config.update(SECRET_KEY_FALLBACKS=[])
    with client.session_transaction() as session:
        assert "marker" not in session  # the old signature no longer counts


def test_evidence_storage_is_read_from_the_environment(monkeypatch):
    assert load_config("development")["EVIDENCE_STORAGE"] == "local"
    monkeypatch.setenv("EVIDENCE_STORAGE", "s3")
    monkeypatch.setenv("S3_BUCKET", "portal-evidence")
    monkeypatch.setenv("S3_ENDPOINT_URL", "https://oss-cn-beijing.aliyuncs.com")
    monkeypatch.setenv("S3_READ_TIMEOUT", "12.5")
    settings = load_config("development")
    assert (settings["EVIDENCE_STORAGE"], settings["S3_BUCKET"]) == ("s3", "portal-evidence")
    assert settings["S3_ENDPOINT_URL"] == "https://oss-cn-beijing.aliyuncs.com"
    assert settings["S3_READ_TIMEOUT"] == 12.5 and settings["S3_PREFIX"] == "evidence/"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EVIDENCE_STORAGE": "nfs"}, "EVIDENCE_STORAGE: Must be one of local, s3."),
        ({"EVIDENCE_STORAGE": "s3"}, "EVIDENCE_STORAGE=s3 needs S3_BUCKET"),
    ],
)
def test_a_storage_setting_that_cannot_work_stops_the_start(monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_config("development")
    assert str(refused.value) == f"invalid settings in the environment: {message}"


def test_production_refuses_to_start_with_a_catalogue_not_compiled(monkeypatch, tmp_path):
    """A checkout deployed without `make translations` would serve every page in English."""
    _production_environment(monkeypatch)
    source = tmp_path / "zh_CN" / "LC_MESSAGES" / "messages.po"
    source.parent.mkdir(parents=True)
    source.write_text('msgid ""\nmsgstr ""\n')
    settings = {"PORTAL_ENV": "production", "BABEL_TRANSLATION_DIRECTORIES": str(tmp_path)}
    with pytest.raises(RuntimeError, match=r"make translations.*zh_CN"):
        create_app(settings)
    source.with_suffix(".mo").write_bytes(b"")  # compiled (Babel reads it only when used)
    assert create_app(settings).config["ENV_NAME"] == "production"
