"""Extensions, created unbound; ``create_app`` binds them to an app."""

from contextlib import contextmanager

from flask import Flask, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
babel = Babel()


@contextmanager
def _hooks_left_as_they_were(*tables: dict):
    """Undo whatever an extension's ``init_app`` adds to these hook tables of the app."""
    kept = [{scope: list(funcs) for scope, funcs in table.items()} for table in tables]
    yield
    for table, before in zip(tables, kept, strict=True):
        table.clear()
        table.update(before)


class PortalCSRF(CSRFProtect):
    """Flask-WTF's CSRF protection, with templates given ``portal.web.forms.generate_csrf``.

    Flask-WTF checks every POST as it always does; ``csrf_token()`` in a template makes the
    token the way every ``PortalForm`` does (``portal/web/forms.py``), through a Jinja global
    (Flask-WTF also adds a context processor returning the same two functions on every render;
    the globals are enough). Its before-request hook is replaced by one that looks at the
    method first: the same three checks as ``protect(apply_exemptions=True)`` (endpoint,
    exemptions, method), each of which lets the request through, so their order does not
    change the outcome, and a GET (most requests) no longer looks up its view's exemption.
    """

    def init_app(self, app: Flask) -> None:
        with _hooks_left_as_they_were(app.before_request_funcs, app.template_context_processors):
            super().init_app(app)
        from .web.forms import generate_csrf

        app.jinja_env.globals["csrf_token"] = generate_csrf
        config = app.config

        @app.before_request
        def csrf_protect():
            if (
                request.method in config["WTF_CSRF_METHODS"]
                and config["WTF_CSRF_ENABLED"]
                and config["WTF_CSRF_CHECK_DEFAULT"]
            ):
                self.protect(apply_exemptions=True)


csrf = PortalCSRF()


class RouteLimiter(Limiter):
    """Flask-Limiter for limits declared on routes (``@limiter.limit``), the only kind we use.

    Flask-Limiter hooks into every request: before it, to check default, application-wide and
    meta limits; after it, to add X-RateLimit headers and to deduct conditional costs; and at
    teardown, to reset its per-request state. Each limited route checks its own limits in the
    wrapper its decorator puts around the view, which needs none of those. With no limits of
    those kinds, no headers (``RATELIMIT_HEADERS_ENABLED`` off: a 429 carries Retry-After from
    ``portal/web/errors.py``) and no ``deduct_when``, the hooks did nothing, yet they were a fifth
    of the work of serving the lookup form page. ``init_app`` leaves them out, and refuses the
    settings that would need them, so that nobody configures a limit that silently never applies.
    """

    NEEDS_HOOKS = (
        "RATELIMIT_DEFAULT",
        "RATELIMIT_APPLICATION",
        "RATELIMIT_META",
        "RATELIMIT_HEADERS_ENABLED",
    )

    def init_app(self, app: Flask) -> None:
        configured = [name for name in self.NEEDS_HOOKS if app.config.get(name)]
        if configured:
            raise RuntimeError(f"declare rate limits on routes, without {configured}")
        with _hooks_left_as_they_were(
            app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs
        ):
            super().init_app(app)


limiter = RouteLimiter(key_func=get_remote_address)
