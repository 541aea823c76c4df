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
from .forms import CodeForm, LoginForm, PreferencesForm, RegisterForm


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
            if accounts.needs_second_factor(user):
                # The password was right; the session starts only after the one-time code.
                session.clear()
                session["pending_user"] = user.session_token
                session["pending_remember"] = bool(form.remember.data)
                session["pending_since"] = int(time.time())
                session["pending_next"] = _safe_next(request.args.get("next"))
                return redirect(url_for("auth.second_factor"))
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


def _pending_user():
    """The user who gave the right password and still owes a one-time code (5 minutes)."""
    token, since = session.get("pending_user"), session.get("pending_since", 0)
    if not token or time.time() - since > 300:
        return None
    return accounts.user_by_session_token(token)


@bp.route("/2fa", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"])
def second_factor():
    user = _pending_user()
    if user is None:
        flash(_("Please sign in again."), "info")
        return redirect(url_for("auth.login"))
    if not user.totp_secret:
        return redirect(url_for("auth.totp_setup"))
    form = CodeForm()
    if form.validate_on_submit():
        if accounts.login_locked(user.email):
            form.code.errors.append(
                _(
                    "Too many failed attempts. Please wait %(n)d minutes and try again.",
                    n=current_app.config["LOGIN_LOCK_MINUTES"],
                )
            )
        elif accounts.check_totp(user.totp_secret, form.code.data):
            return _finish_pending(user)
        else:
            accounts.note_login_failure(user.email)
            form.code.errors.append(_("That code is not right. Check the time on your phone."))
    return render_template("auth/second_factor.html", form=form)


def _finish_pending(user):
    remember, target = session.get("pending_remember", False), session.get("pending_next")
    accounts.clear_login_failures(user.email)
    _start_session(user, remember=remember)
    flash(_("You are signed in."), "success")
    return redirect(target if is_local_path(target) else url_for("customer.home"))


@bp.route("/2fa/setup", methods=["GET", "POST"])
def totp_setup():
    """Set up a one-time code app: required for admins at their first sign-in, optional for
    other staff (from the header menu once signed in)."""
    user = _pending_user() or (current_user if current_user.is_authenticated else None)
    if user is None or not user.is_staff:
        return redirect(url_for("auth.login"))
    secret = session.get("totp_setup_secret") or accounts.new_totp_secret()
    session["totp_setup_secret"] = secret
    form = CodeForm()
    if form.validate_on_submit():
        try:
            accounts.enable_totp(user, secret, form.code.data)
        except ServiceError as error:
            form.code.errors.append(error.message)
        else:
            session.pop("totp_setup_secret", None)
            if not current_user.is_authenticated:
                return _finish_pending(user)
            flash(_("Two-step sign-in is on."), "success")
            return redirect(url_for("customer.home"))
    uri = accounts.totp_uri(user, secret)
    return render_template(
        "auth/totp_setup.html", form=form, secret=secret, uri=uri, qr_svg=_qr_svg(uri)
    )


def _qr_svg(text: str) -> str:
    import io

    import segno

    buffer = io.BytesIO()
    segno.make(text, error="m").save(
        buffer, kind="svg", scale=5, xmldecl=False, svgns=True, dark="#1d2b36"
    )
    return buffer.getvalue().decode()


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """The signed-in person's own settings: which mail they get, two-step sign-in."""
    form = PreferencesForm(data={"optional_mail": current_user.optional_mail})
    if form.validate_on_submit():
        accounts.set_optional_mail(current_user, bool(form.optional_mail.data))
        flash(_("Saved."), "success")
        return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form, data_export="customer.account_data")
