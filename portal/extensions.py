"""Extensions, created unbound; ``create_app`` binds them to an app."""

from flask import Flask
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
csrf = CSRFProtect()
babel = Babel()


class RouteLimiter(Limiter):
    """Flask-Limiter for limits declared on routes (``@limiter.limit``), the only kind we use.

    Flask-Limiter hooks into every request: before it, to check default, application-wide and
    meta limits; after it, to add X-RateLimit headers and to deduct conditional costs; and at
    teardown, to reset its per-request state. Each limited route checks its own limits in the
    wrapper its decorator puts around the view, which needs none of those. With no limits of
    those kinds, no headers (``RATELIMIT_HEADERS_ENABLED`` off: a 429 carries Retry-After from
    ``portal/errors.py``) and no ``deduct_when``, the hooks did nothing, yet they were a fifth
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
        hooks = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
        kept = [{scope: list(funcs) for scope, funcs in table.items()} for table in hooks]
        super().init_app(app)
        for table, before in zip(hooks, kept, strict=True):
            table.clear()
            table.update(before)


limiter = RouteLimiter(key_func=get_remote_address)
