"""Language and time-zone handling: Chinese first, English second, Beijing time on screen."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from flask import Flask, current_app, has_request_context, request
from flask_babel import format_datetime, get_babel, get_locale
from flask_login import current_user

from ..extensions import babel

LANG_COOKIE = "lang"


def select_locale() -> str:
    """A signed-in user's saved language, else the language cookie, else Chinese."""
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI commands and jobs speak the default language
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    cookies = request.cookies
    if not cookies:  # no session, so nobody signed in, and no language chosen
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    if current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    cookie = cookies.get(LANG_COOKIE)
    if cookie in languages:
        return cookie
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def current_language() -> str:
    """The active language as one of the configured codes (``zh_CN`` or ``en``).

    Babel spells Chinese ``zh_Hans_CN``; pages and cookies use the configured short form.
    """
    locale = get_locale()
    if locale is None or locale.language == "zh":
        return "zh_CN"
    return locale.language


def format_money(value) -> str:
    """Money as the portal shows it everywhere: ``¥1,234.56``."""
    if value is None or value == "":
        return "—"
    return f"¥{Decimal(value):,.2f}"


def format_local_datetime(value: datetime | None, fmt: str = "yyyy-MM-dd HH:mm") -> str:
    """An aware UTC time shown in Beijing time."""
    if value is None:
        return "—"
    return format_datetime(value, fmt)


def missing_catalogs(app: Flask) -> list[str]:
    """The catalogues kept as source (``messages.po``) but not compiled (no ``messages.mo``
    beside it). Flask-Babel does not complain: every page in that language silently falls back
    to the English source text."""
    missing: dict[Path, str] = {}  # by the real file: zh_Hans_CN is a link to zh_CN
    for folder in get_babel(app).translation_directories:
        for po in sorted(Path(folder).glob("*/LC_MESSAGES/*.po")):
            if not po.with_suffix(".mo").exists():
                missing.setdefault(po.resolve(), str(po))
    return list(missing.values())


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    missing = missing_catalogs(app)
    if missing:
        problem = f"translations not compiled (run `make translations`): {', '.join(missing)}"
        if app.config["ENV_NAME"] == "production":
            raise RuntimeError(problem)
        app.logger.warning(problem)
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["local_dt"] = format_local_datetime

    @app.context_processor
    def inject_locale():
        return {"current_locale": current_language(), "languages": app.config["LANGUAGES"]}
