"""Views for sign-up, sign-in and sign-out: parse the form, call a service, redirect."""

import math
import time

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter
from ..services import account_links, accounts, throttle
from ..services.errors import ServiceError
from ..web.forms import PortalForm
from ..web.i18n import select_locale
from ..web.urls import is_local_path
from . import bp
from .forms import (
    CodeForm,
    ForgotPasswordForm,
    LoginForm,
    NewPasswordForm,
    PreferencesForm,
    RegisterForm,
    ReplaceCodeForm,
    VerifyEmailForm,
)


def _safe_next(target: str | None, user=None) -> str:
    # Only same-site paths: an absolute URL here would make us an open redirect. Without one,
    # staff land on their review queue and customers on their home page.
    if is_local_path(target):
        return target
    return (
        url_for("staff.queue") if user is not None and user.is_staff else url_for("customer.home")
    )


def _start_session(user, remember: bool) -> None:
    # A fresh session at sign-in, so nothing planted before it (fixation) survives.
    session.clear()
    login_user(user, remember=remember)
    session.permanent = True
    session["started_at"] = session["seen_at"] = int(time.time())
    accounts.record_login(user)


def _too_many(form_field, wait: int) -> None:
    form_field.errors.append(
        _(
            "Too many failed attempts. Please wait %(n)d minutes and try again.",
            n=max(1, math.ceil(wait / 60)),
        )
    )


def _source() -> str:
    # The client's address (ProxyFix has put it here when TRUSTED_PROXIES is set).
    return request.remote_addr or "unknown"


def _known_browser(account: str) -> bool:
    return account in throttle.known_accounts(request.cookies.get(throttle.KNOWN_BROWSER_COOKIE))


def _remember_browser(response, account: str):
    """Mark this browser as one the account holder signed in from (see services/throttle)."""
    response.set_cookie(
        throttle.KNOWN_BROWSER_COOKIE,
        throttle.known_cookie_with(request.cookies.get(throttle.KNOWN_BROWSER_COOKIE), account),
        max_age=current_app.config["KNOWN_BROWSER_DAYS"] * 86400,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER"], methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("customer.home"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            accounts.register_customer(form.email.data, form.password.data, locale=select_locale())
        except ServiceError as error:
            getattr(form, error.field or "email").errors.append(error.message)
        else:
            # The same answer whether or not the address had an account: its holder learns
            # which by mail ("confirm your address" or "you already have an account").
            flash(
                _(
                    "Thank you. We have sent a message to %(email)s: open the link in it to "
                    "confirm your address. You can sign in now.",
                    email=form.email.data.strip(),
                ),
                "success",
            )
            return redirect(url_for("auth.login", next=request.args.get("next")))
    return render_template("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next"), current_user))
    form = LoginForm()
    if form.validate_on_submit():
        account = throttle.account_id(accounts.login_name(form.email.data))
        wait = throttle.wait_seconds(account, _source(), _known_browser(account))
        if wait:
            _too_many(form.password, wait)
            return render_template("auth/login.html", form=form), 429
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is None:
            throttle.note_failure(account, _source())
            # One message for every failure: never reveal whether the e-mail has an account.
            form.password.errors.append(_("The e-mail or password is not correct."))
        else:
            if accounts.needs_second_factor(user):
                # The password was right; the session starts only after the one-time code.
                session.clear()
                session["pending_user"] = user.session_token
                session["pending_account"] = account
                session["pending_remember"] = bool(form.remember.data)
                session["pending_since"] = int(time.time())
                session["pending_next"] = _safe_next(request.args.get("next"), user)
                return redirect(url_for("auth.second_factor"))
            throttle.clear_source(account, _source())
            _start_session(user, remember=form.remember.data)
            flash(_("You are signed in."), "success")
            return _remember_browser(redirect(_safe_next(request.args.get("next"), user)), account)
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
        account = session.get("pending_account") or throttle.account_id(user.email)
        wait = throttle.wait_seconds(account, _source(), _known_browser(account))
        if wait:
            _too_many(form.code, wait)
        elif accounts.check_second_factor(user, form.code.data):
            return _finish_pending(user)
        else:
            throttle.note_failure(account, _source())
            form.code.errors.append(_("That code is not right. Check the time on your phone."))
    return render_template("auth/second_factor.html", form=form)


def _finish_pending(user):
    remember, target = session.get("pending_remember", False), session.get("pending_next")
    account = session.get("pending_account") or throttle.account_id(user.email)
    throttle.clear_source(account, _source())
    _start_session(user, remember=remember)
    flash(_("You are signed in."), "success")
    response = redirect(target if is_local_path(target) else url_for("customer.home"))
    return _remember_browser(response, account)


@bp.route("/2fa/setup", methods=["GET", "POST"])
def totp_setup():
    """Set up a one-time code app: required for admins at their first sign-in, optional for
    other staff (from their account page once signed in).

    Before the session starts (password given, code owed) only a user with no app yet may set
    one up; with one on, the code step is the only way in. A signed-in user replacing their
    app must give the current app's code too; an admin's reset is the way for a lost phone.
    """
    if current_user.is_authenticated:
        user = current_user
    else:
        user = _pending_user()
        if user is not None and user.totp_secret:
            return redirect(url_for("auth.second_factor"))
    if user is None or not user.is_staff:
        return redirect(url_for("auth.login"))
    replacing = bool(user.totp_secret)
    secret = session.get("totp_setup_secret") or accounts.new_totp_secret()
    session["totp_setup_secret"] = secret
    form = ReplaceCodeForm() if replacing else CodeForm()
    if form.validate_on_submit():
        try:
            accounts.enable_totp(
                user, secret, form.code.data, form.current_code.data if replacing else None
            )
        except ServiceError as error:
            if error.field == "current_code":
                throttle.note_failure(throttle.account_id(user.email), _source())
            getattr(form, error.field or "code").errors.append(error.message)
        else:
            session.pop("totp_setup_secret", None)
            if not current_user.is_authenticated:
                return _finish_pending(user)
            flash(_("Two-step sign-in is on."), "success")
            return redirect(url_for("customer.home"))
    uri = accounts.totp_uri(user, secret)
    return render_template(
        "auth/totp_setup.html",
        form=form,
        secret=secret,
        uri=uri,
        qr_svg=_qr_svg(uri),
        replacing=replacing,
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


# ------------------------------------------------------------- links sent by mail


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_PASSWORD_RESET"], methods=["POST"])
def forgot_password():
    """Ask for a password reset link; the answer never says whether the address has an
    account."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        account_links.request_password_reset(form.email.data)
        flash(
            _(
                "If %(email)s has an account, we have sent it a link to set a new password.",
                email=form.email.data.strip(),
            ),
            "info",
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"])
def reset_password(token: str):
    try:
        user = account_links.user_for_reset(token)
    except ServiceError as error:
        return render_template("auth/reset_password.html", form=None, error=error.message), 400
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            account_links.reset_password(token, form.password.data)
        except ServiceError as error:
            getattr(form, error.field or "password").errors.append(error.message)
        else:
            flash(_("Your new password is set. Please sign in."), "success")
            response = redirect(url_for("auth.login"))
            return _remember_browser(response, throttle.account_id(user.email))
    return render_template("auth/reset_password.html", form=form, error=None)


@bp.route("/verify/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"])
def verify_email(token: str):
    """The link from the "confirm your address" mail, with the account's password (GET only
    shows the form: mail scanners open links before people do)."""
    try:
        account_links.user_for_verification(token)
    except ServiceError as error:
        return render_template("auth/verify_email.html", form=None, error=error.message), 400
    form = VerifyEmailForm()
    if form.validate_on_submit():
        try:
            account_links.verify_email(token, form.password.data)
        except ServiceError as error:
            form.password.errors.append(error.message)
        else:
            flash(_("Thank you: your e-mail address is confirmed."), "success")
            return redirect(url_for("customer.home"))
    return render_template("auth/verify_email.html", form=form, error=None)


@bp.route("/verify", methods=["POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["RATELIMIT_PASSWORD_RESET"],
    key_func=lambda: f"verify:{current_user.get_id()}",
)
def resend_verification():
    form = PortalForm()
    if form.validate_on_submit() and account_links.resend_verification(current_user):
        flash(_("We have sent the link again to %(email)s.", email=current_user.email), "info")
    return redirect(url_for("auth.account"))
