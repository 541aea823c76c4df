"""发票补录服务平台 — the Invoice Re-entry Portal.

``create_app`` builds the web application. Nothing here connects to the database or Redis:
connections are made on first use, so importing the package is always safe.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from flask import Flask, abort, request
from werkzeug.exceptions import BadRequest

from .config import BaseConfig, load_config
from .extensions import cache, csrf, db, limiter, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: str | Mapping | None = None) -> Flask:
    """Build the app.

    ``config`` is an environment name (``development``, ``testing``, ``production``), a mapping
    of settings applied over the ``testing`` defaults (for tests), or None for ``PORTAL_ENV``.
    """
    app = Flask(
        __name__,
        static_folder=str(ROOT / "static"),
        instance_path=os.environ.get("PORTAL_INSTANCE_PATH", str(ROOT / "instance")),
        instance_relative_config=True,
    )
    if isinstance(config, Mapping):
        app.config.update(load_config(config.get("PORTAL_ENV", "testing")))
        app.config.update(config)
    else:
        app.config.update(load_config(config))
    _ensure_secret_key(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", None)
    if not app.config["RATELIMIT_STORAGE_URI"]:
        app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    _bound_dependency_waits(app)

    from .support.jsonbody import SafeJSONProvider

    app.json = SafeJSONProvider(app)
    register_extensions(app)
    from . import queue

    queue.init_app(app)  # jobs planned in a transaction are enqueued after its commit
    register_blueprints(app)
    register_request_hooks(app)
    from .ops import metrics
    from .web import errors, origin, security, uploads

    metrics.init_app(app)
    origin.init_app(app)

    errors.register(app)
    uploads.register(app)
    security.register(app)
    from .cli import register as register_cli

    register_cli(app)
    from .support import logmask

    logmask.install(app)  # no e-mail, phone number or tax ID reaches the logs in clear
    from .services import accounts
    from .support import crypto

    crypto.init_app(app)
    accounts.init_app(app)
    _trust_proxies(app)  # last: outside every other middleware, so all see the client
    return app


def _bound_dependency_waits(app: Flask) -> None:
    """Timeouts on every database and Redis client made from these settings: the engine's (pool,
    connect, statement) and Flask-Limiter's storage client (the same as ``redis_connection``'s).
    Settings given explicitly (a test's mapping) win."""
    from .config import engine_options
    from .queue import redis_options

    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    if app.config["SQLALCHEMY_ENGINE_OPTIONS"] == BaseConfig.SQLALCHEMY_ENGINE_OPTIONS:
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    uri = app.config["RATELIMIT_STORAGE_URI"]
    if uri.split(":", 1)[0] in ("redis", "rediss", "unix"):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", redis_options(app.config))


def _trust_proxies(app: Flask) -> None:
    """Behind ``TRUSTED_PROXIES`` reverse proxies, take the client address and scheme from
    their X-Forwarded-For/-Proto (werkzeug's ProxyFix): per-IP limits then count clients, not
    the load balancer. Off by default, because without a proxy those headers are the client's
    own invention."""
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def _ensure_secret_key(app: Flask) -> None:
    if app.config.get("SECRET_KEY"):
        return
    if app.config["ENV_NAME"] != "development":
        raise RuntimeError("SECRET_KEY must be set in the environment")
    # Development only: a random key kept in the instance folder, so sessions survive restarts
    # without anyone committing a key to the repository.
    path = Path(app.instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    app.config["SECRET_KEY"] = path.read_text().strip()


def register_extensions(app: Flask) -> None:
    from . import models  # noqa: F401  (every table registered before Migrate looks)

    db.init_app(app)
    _tune_sqlite(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    cache.init_app(app)
    from .web import i18n

    i18n.init_app(app)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    from flask_babel import lazy_gettext as _l

    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(session_token: str):
        from sqlalchemy import select

        from .models import User

        return db.session.scalar(select(User).where(User.session_token == session_token))


def _tune_sqlite(app: Flask) -> None:
    """SQLite (the `make run` default) shared by web, worker and CLI processes: WAL lets readers
    and one writer work at once, and a busy timeout makes writers queue instead of failing."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    in_memory = uri in ("sqlite://", "sqlite:///:memory:")

    def on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    with app.app_context():
        engine: Engine = db.engine
        event.listen(engine, "connect", on_connect)


def register_blueprints(app: Flask) -> None:
    from .support.ids import IdConverter

    app.url_map.converters["int"] = IdConverter  # before any rule is added
    from .api import bp as api_bp
    from .auth import bp as auth_bp
    from .customer import bp as customer_bp
    from .help import bp as help_bp
    from .ops import bp as ops_bp
    from .staff import bp as staff_bp

    app.register_blueprint(customer_bp)
    app.register_blueprint(help_bp)
    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(ops_bp)
    app.register_blueprint(staff_bp, url_prefix="/staff")
    app.register_blueprint(api_bp, url_prefix="/api/v1")


def register_request_hooks(app: Flask) -> None:
    @app.before_request
    def refuse_nul_characters():
        # PostgreSQL text cannot hold U+0000: psycopg raises DataError (a 500) wherever such a
        # value reaches a query, and no form, URL or API field has a use for it.
        req = request._get_current_object()  # one context lookup instead of one per attribute
        if req.view_args and any(_holds_nul(v) for v in req.view_args.values()):
            abort(404)
        if req.query_string and _holds_nul_field(req.args):
            abort(400)
        if req.content_length or "Transfer-Encoding" in req.headers:  # a body
            if _holds_nul_field(req.form):
                abort(400)
            if req.is_json:
                try:
                    body = req.get_json()  # SafeJSONProvider: any bad shape is a ValueError
                except BadRequest:
                    from flask_babel import gettext as _

                    from .web.errors import render_error

                    return render_error(
                        400, _("The body is not valid JSON, or it is nested too deeply.")
                    )
                if _holds_nul(body):
                    abort(400)


def _holds_nul_field(fields) -> bool:
    """True if a field name or value of a MultiDict (query string, form) contains U+0000."""
    return any(_holds_nul(key) or _holds_nul(values) for key, values in fields.lists())


def _holds_nul(value) -> bool:
    """True if ``value``, or any string in it (lists, dicts: JSON), contains U+0000.

    Walked with a stack, not recursion: a body nested deep must not raise RecursionError."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False
