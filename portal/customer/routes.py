"""Customer-facing views."""

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from ..i18n import LANG_COOKIE
from ..services import accounts
from ..urls import is_local_path
from . import bp


@bp.route("/")
def home():
    return render_template("customer/home.html")


@bp.route("/language", methods=["POST"])
def set_language():
    # A POST with the CSRF token (the switch is a small form in the header).
    form = FlaskForm()
    language = request.form.get("language", "")
    if not form.validate_on_submit() or language not in current_app.config["LANGUAGES"]:
        flash(_("That language is not available."), "error")
        return redirect(url_for("customer.home"))
    if current_user.is_authenticated:
        accounts.set_locale(current_user, language)
    with force_locale(language):
        flash(_("Language changed."), "success")
    response = redirect(_back())
    response.set_cookie(
        LANG_COOKIE,
        language,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        httponly=True,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


def _back() -> str:
    target = request.form.get("next", "")
    return target if is_local_path(target) else url_for("customer.home")
