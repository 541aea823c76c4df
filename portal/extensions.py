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

    Flask-Limiter checks default, application-wide and meta limits before every request, and
    each limited route's own limits in the wrapper its decorator puts around the view. With no
    limits of the first kinds the before-request pass finds nothing, yet it was a fifth of the
    work of serving the lookup form page; ``init_app`` leaves it out, and refuses those settings
    so that nobody configures a limit that would silently never apply.
    """

    APP_WIDE_SETTINGS = ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META")

    def init_app(self, app: Flask) -> None:
        configured = [name for name in self.APP_WIDE_SETTINGS if app.config.get(name)]
        if configured:
            raise RuntimeError(f"declare rate limits on routes, not with {configured}")
        super().init_app(app)
        app.before_request_funcs[None].remove(self._check_request_limit)


limiter = RouteLimiter(key_func=get_remote_address)
