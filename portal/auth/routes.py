"""Views for sign-up, sign-in and sign-out: parse the form, call a service, redirect."""

import time

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter
from ..i18n import select_locale
from ..services import accounts
from ..services.errors import ServiceError
from ..urls import is_local_path
from . import bp
from .forms import LoginForm, RegisterForm


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an absolute URL here would make us an open redirect.
    return target if is_local_path(target) else url_for("customer.home")


def _start_session(user, remember: bool) -> None:
    # A fresh session at sign-in, so nothing planted before it (fixation) survives.
    session.clear()
    login_user(user, remember=remember)
    session.permanent = True
    session["started_at"] = session["seen_at"] = int(time.time())
    accounts.record_login(user)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER"], methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("customer.home"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = accounts.register_customer(
                form.email.data, form.password.data, locale=select_locale()
            )
        except ServiceError as error:
            getattr(form, error.field or "email").errors.append(error.message)
        else:
            _start_session(user, remember=False)
            flash(_("Welcome! Your account is ready."), "success")
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        if accounts.login_locked(email):
            form.password.errors.append(
                _(
                    "Too many failed attempts. Please wait %(n)d minutes and try again.",
                    n=current_app.config["LOGIN_LOCK_MINUTES"],
                )
            )
            return render_template("auth/login.html", form=form), 429
        user = accounts.authenticate(email, form.password.data)
        if user is None:
            accounts.note_login_failure(email)
            # One message for every failure: never reveal whether the e-mail has an account.
            form.password.errors.append(_("The e-mail or password is not correct."))
        else:
            accounts.clear_login_failures(email)
            _start_session(user, remember=form.remember.data)
            flash(_("You are signed in."), "success")
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    accounts.sign_out_everywhere(current_user)
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("customer.home"))
