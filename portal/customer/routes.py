"""Customer-facing views: parse the form, call one service, render or redirect."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from urllib.parse import quote

from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..domain import (
    InvoiceRuleError,
    parse_identity,
    parse_money,
    parse_qr,
    required_fields,
)
from ..domain.fields import CLAIM_FIELDS, CONFIRM_FIELDS, LOOKUP_FIELDS
from ..extensions import csrf, limiter
from ..models import utcnow
from ..scans.errors import EvidenceRefused
from ..services import accounts, buyers, cases, evidence, privacy, review
from ..services import lookup as lookup_service
from ..services.errors import ServiceError
from ..web.formerrors import attach_error, attach_errors
from ..web.forms import PortalForm, SessionlessForm
from ..web.i18n import LANG_COOKIE, current_language
from ..web.pages import shared_page
from ..web.uploads import add_evidence_file, finish
from ..web.urls import is_local_path
from . import bp
from .forms import (
    BuyerLinkForm,
    ConfirmFieldsForm,
    EvidenceForm,
    InvoiceFilterForm,
    LookupForm,
    MessageForm,
    ReportForm,
    ScanForm,
    WithdrawForm,
)
from .presenters import query_fields, report_prefill


def _user_key() -> str:
    return f"user:{current_user.get_id()}"


def _anonymous() -> bool:
    return not current_user.is_authenticated


@bp.route("/")
@shared_page
def home():
    return render_template("customer/home.html", form=LookupForm(formdata=None))


@bp.get("/lookup")
@shared_page
def lookup():
    """The lookup form, prefilled from the query string (the corrected-lookup link)."""
    return render_template(
        "customer/lookup.html",
        form=LookupForm(formdata=None, data={k: request.args.get(k, "") for k in LOOKUP_FIELDS}),
        result=None,
        scan_form=ScanForm(formdata=None),
    )


def _looked_up(response) -> bool:
    """A lookup counts against the limits unless the form was refused before anything was
    looked up (a 422: a field that breaks the invoice rules, shown beside it). Those mistakes
    read nothing and tell nothing, so correcting them costs the customer no lookups; the limit
    is still checked before each attempt."""
    return response.status_code != 422


# The form page and the lookup itself are two views: the page is for everyone, often, and
# costs no rate-limit check; a lookup spends the visitor's and the invoice's allowance. Anyone
# may look up: no session token, only the cross-origin check (portal/web/forms.py).
@bp.post("/lookup")
@csrf.exempt
@limiter.limit(lambda: current_app.config["RATELIMIT_LOOKUP_IP"], deduct_when=_looked_up)
@limiter.limit(
    lambda: current_app.config["RATELIMIT_LOOKUP_USER"],
    key_func=_user_key,
    exempt_when=_anonymous,
    deduct_when=_looked_up,
)
def lookup_submit():
    form = LookupForm()
    result = None
    if form.validate_on_submit():
        try:
            if form.qr_text.data:
                query = parse_qr(form.qr_text.data).lookup_query()
                # Show what the QR code said, so the customer can see what was looked up.
                form = LookupForm(formdata=None, data=query_fields(query))
            else:
                query = lookup_service.parse({k: form[k].data for k in LOOKUP_FIELDS})
            user = current_user if current_user.is_authenticated else None
            result = lookup_service.lookup(query, user=user, source=request.remote_addr)
        except InvoiceRuleError as error:
            attach_error(form, error, "qr_text" if form.qr_text.data else "number")
        except lookup_service.LookupLimited as error:
            flash(error.message, "warning")
    status = 200 if result or not form.errors else 422
    # An answer page shows the form again, not the file scan: no ScanForm to build for it.
    scan_form = None if result else ScanForm(formdata=None)
    return render_template(
        "customer/lookup.html", form=form, result=result, scan_form=scan_form
    ), status


@bp.route("/lookup/scan", methods=["POST"])
@csrf.exempt
@limiter.limit(lambda: current_app.config["RATELIMIT_LOOKUP_IP"])
def lookup_scan():
    """Fill the lookup form from a photo, PDF, OFD or XML of the invoice (nothing is kept)."""
    form = ScanForm()
    values: dict[str, str] = {}
    upload = form.file.data  # the first control with a file (camera or file chooser)
    if form.validate_on_submit() and upload is not None and upload.filename:
        try:
            values = evidence.read_for_lookup(upload.filename, upload.read())
        except EvidenceRefused as refusal:
            flash(refusal.message(current_language()), "error")
        else:
            if values.get("number"):
                flash(_("We read the invoice; check the fields and look it up."), "success")
            else:
                flash(
                    _(
                        "No QR code or invoice data could be read from this file; please type "
                        "the fields."
                    ),
                    "warning",
                )
    else:
        flash(_("Choose a file."), "error")
    lookup_form = LookupForm(formdata=None, data=values)
    return render_template(
        "customer/lookup.html", form=lookup_form, result=None, scan_form=ScanForm(formdata=None)
    )


@bp.route("/lookup/fields")
def lookup_fields():
    """Which fields a lookup of this code/number needs (used by the form as people type)."""
    try:
        identity = parse_identity(request.args.get("code", ""), request.args.get("number", ""))
    except InvoiceRuleError as error:
        return jsonify(ok=False, field=error.field, message=error.message(current_language()))
    language = current_language()
    return jsonify(
        ok=True,
        fields=[f.value for f in required_fields(identity)],
        needs_code=bool(identity.code),
        kind=identity.kind.label(language),
        region=identity.region.name(language),
        beijing=identity.is_beijing,
    )


def _judge_report(form: ReportForm):
    """Every problem of the report at once, each beside its field; the claim if there is none."""
    form.validate_on_submit()
    claimed, problems = cases.parse_claim_all({name: form[name].data for name in CLAIM_FIELDS})
    attach_errors(form, problems, "number")
    if form.contact_preference.data == "phone" and not form.contact_phone.data:
        form.contact_phone.errors = [_("Enter a phone number, or choose e-mail.")]
    return None if any(f.errors for f in form) else claimed


@bp.route("/cases/new", methods=["GET", "POST"])
@login_required
# Every attempt, corrections included, is throttled generously here; only accepted reports
# count against RATELIMIT_CASE_CREATE (cases.report_case counts the customer's reports).
@limiter.limit(
    lambda: current_app.config["RATELIMIT_CASE_ATTEMPTS"],
    methods=["POST"],
    key_func=_user_key,
)
def new_case():
    if request.method == "GET":
        form = ReportForm(formdata=None, data=report_prefill(request.args))
        return render_template("customer/case_new.html", form=form)
    form = ReportForm()
    claimed = _judge_report(form)
    files = [f for f in form.files.data or [] if f.filename]
    if claimed is not None:
        try:
            case = cases.report_case(
                claimed,
                current_user._get_current_object(),
                contact_phone=form.contact_phone.data,
                contact_preference=form.contact_preference.data,
                description=form.description.data or "",
            )
        except cases.DuplicateCase as duplicate:
            flash(duplicate.message, "warning")
            return redirect(
                url_for("customer.case_detail", reference=duplicate.case.reference), 303
            )
        except cases.ReportsLimited as limited:
            flash(limited.message, "error")  # what was typed stays in the form
            return render_template("customer/case_new.html", form=form), 429
        except ServiceError as error:
            attach_error(form, error, "number")
        else:
            flash(
                _("Thank you. Your report %(ref)s has been received.", ref=case.reference),
                "success",
            )
            for storage_file in files:
                add_evidence_file(case, storage_file)
            return redirect(url_for("customer.case_detail", reference=case.reference))
    return render_template("customer/case_new.html", form=form, files_dropped=bool(files)), 422


@bp.route("/cases")
@login_required
def case_list():
    return render_template("customer/cases.html", cases=cases.cases_of(current_user))


def _own_case_or_404(reference: str):
    case = cases.case_for_customer(current_user, reference)
    if case is None:
        abort(404)  # another customer's case looks exactly like one that does not exist
    return case


@bp.route("/cases/<reference>")
@login_required
def case_detail(reference: str):
    case = _own_case_or_404(reference)
    extracted = {name: value for name, (value, _source) in review.extracted_fields(case).items()}
    confirm = ConfirmFieldsForm(formdata=None, data=case.confirmed_fields or extracted)
    return render_template(
        "customer/case.html",
        case=case,
        events=cases.public_events(case),
        message_form=MessageForm(formdata=None),
        withdraw_form=WithdrawForm(formdata=None),
        evidence_form=EvidenceForm(formdata=None),
        confirm_form=confirm,
        confirm_fields=CONFIRM_FIELDS,
        can_upload=evidence.can_add_evidence(case),
        extracted=extracted,
        unreadable=any((u.extracted or {}).get("readable") is False for u in case.uploads),
    )


@bp.route("/cases/<reference>/evidence", methods=["POST"])
@login_required
@limiter.limit(lambda: current_app.config["RATELIMIT_UPLOAD"], key_func=_user_key)
def case_evidence(reference: str):
    case = _own_case_or_404(reference)
    form = EvidenceForm()
    # Only real file parts count (a plain form value under the same name is not a file).
    files = [f for f in request.files.getlist("files") if f.filename]
    if not form.validate_on_submit() or not files:
        flash(_("Choose at least one file."), "error")
    else:
        for storage_file in files:
            add_evidence_file(case, storage_file)
    return finish(url_for("customer.case_detail", reference=reference) + "#evidence")


@bp.route("/cases/<reference>/confirm", methods=["POST"])
@login_required
def case_confirm(reference: str):
    case = _own_case_or_404(reference)
    form = ConfirmFieldsForm()
    if form.validate_on_submit():
        evidence.confirm_fields(case, current_user, {n: form[n].data for n in CONFIRM_FIELDS})
        flash(_("Thank you; the reviewer will see what you confirmed."), "success")
    return redirect(url_for("customer.case_detail", reference=reference) + "#evidence")


@bp.route("/evidence/<int:upload_id>/<any(original, preview, thumbnail):variant>")
@login_required
def evidence_file(upload_id: int, variant: str):
    upload = evidence.upload_for(current_user, upload_id)
    served = evidence.file_for(upload, variant) if upload is not None else None
    if served is None:
        abort(404)  # someone else's file looks exactly like a missing one
    # Streamed from storage (local folder or the shared bucket), never read whole.
    response = Response(served.chunks(), mimetype=served.media_type, direct_passthrough=True)
    response.content_length = served.size
    response.call_on_close(served.stream.close)
    # Never rendered as a page of ours: always an attachment, never sniffed, sandboxed.
    response.headers["Content-Disposition"] = _attachment(served.download_name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _attachment(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


@bp.route("/cases/<reference>/messages", methods=["POST"])
@login_required
def case_message(reference: str):
    case = _own_case_or_404(reference)
    form = MessageForm()
    if form.validate_on_submit():
        try:
            cases.add_message(case, current_user, form.body.data)
        except ServiceError as error:
            flash(error.message, "error")
        else:
            flash(_("Your message has been added."), "success")
            return redirect(url_for("customer.case_detail", reference=reference) + "#messages")
    else:
        for errors in form.errors.values():
            flash(" ".join(str(e) for e in errors), "error")
    return redirect(url_for("customer.case_detail", reference=reference) + "#messages")


@bp.route("/cases/<reference>/withdraw", methods=["POST"])
@login_required
def case_withdraw(reference: str):
    case = _own_case_or_404(reference)
    form = WithdrawForm()
    if form.validate_on_submit():
        try:
            cases.withdraw(case, current_user, form.reason.data or "")
        except ServiceError as error:
            flash(error.message, "error")
        else:
            flash(_("Your report has been withdrawn."), "success")
    return redirect(url_for("customer.case_detail", reference=reference))


@bp.route("/buyers", methods=["GET", "POST"])
@login_required
def buyer_links():
    form = BuyerLinkForm()
    if form.validate_on_submit():
        try:
            buyers.request_link(
                current_user, form.buyer_tax_id.data, form.buyer_name.data, form.note.data or ""
            )
        except ServiceError as error:
            attach_error(form, error, "buyer_tax_id")
        else:
            flash(_("Your request has been sent; staff will review it."), "success")
            return redirect(url_for("customer.buyer_links"))
    status = 422 if form.errors else 200
    return render_template(
        "customer/buyers.html", form=form, links=buyers.links_of(current_user)
    ), status


@bp.route("/buyers/invitations/<token>", methods=["GET", "POST"])
@login_required
def accept_invitation(token: str):
    link = buyers.invitation(token)
    if link is None:
        abort(404)
    form = PortalForm()
    if form.validate_on_submit():
        try:
            buyers.accept_invitation(current_user, token)
        except ServiceError as error:
            flash(error.message, "error")
        else:
            flash(_("You can now see the invoices of %(name)s.", name=link.buyer_name), "success")
            return redirect(url_for("customer.my_invoices"))
    return render_template("customer/invitation.html", link=link, form=form)


def _filter_from(form: InvoiceFilterForm) -> buyers.InvoiceFilter:
    def money(field) -> Decimal | None:
        try:
            return parse_money(field.data, field=field.name) if field.data else None
        except InvoiceRuleError as error:
            field.errors = [*field.errors, error.message(current_language())]
            return None

    return buyers.InvoiceFilter(
        state=form.state.data or None,
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        amount_min=money(form.amount_min),
        amount_max=money(form.amount_max),
        number=form.number.data or None,
    )


@bp.route("/invoices")
@login_required
def my_invoices():
    form = InvoiceFilterForm(request.args)
    form.validate()
    page = buyers.my_invoices(
        current_user,
        _filter_from(form),
        request.args.get("page", 1, type=int),
        current_app.config["PAGE_SIZE"],
    )
    return render_template(
        "customer/invoices.html",
        form=form,
        page=page,
        tax_ids=buyers.approved_tax_ids(current_user),
    )


@bp.route("/invoices.csv")
@login_required
def my_invoices_csv():
    form = InvoiceFilterForm(request.args)
    form.validate()
    rows = buyers.export_csv(
        current_user, _filter_from(form), current_app.config["EXPORT_MAX_ROWS"]
    )
    return Response(
        stream_with_context(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="invoices.csv"'},
    )


@bp.route("/invoices/<key>")
@login_required
def my_invoice(key: str):
    invoice = buyers.my_invoice(current_user, key)
    if invoice is None:
        abort(404)
    return render_template(
        "customer/invoice.html", invoice=invoice, timeline=lookup_service.timeline(invoice)
    )


@bp.route("/account/data.zip")
@login_required
@limiter.limit(lambda: current_app.config["RATELIMIT_DATA_EXPORT"], key_func=_user_key)
def account_data():
    """Everything the portal holds about the signed-in user, as a ZIP download."""
    # Evidence can be large: the ZIP is built on disk; the response closes (and so deletes) it.
    spool = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        privacy.write_customer_data(current_user._get_current_object(), spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    response = send_file(
        spool,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"portal-data-{utcnow():%Y%m%d}.zip",
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/rate/<token>", methods=["GET", "POST"])
def rate(token: str):
    """The rating link from the resolution mail: no sign-in needed. GET only shows the form
    (mail scanners open links before people do); the POST records the rating once."""
    score = request.values.get("score", type=int)
    if request.method == "POST":
        try:
            case = cases.record_rating(
                token, score or 0, request.form.get("comment", ""), current_app.config["SECRET_KEY"]
            )
        except ServiceError as error:
            return render_template(
                "customer/rate.html", error=error.message, score=score, token=token
            ), 400 if error.code != "used" else 409
        return render_template("customer/rate.html", done=True, reference=case.reference)
    return render_template("customer/rate.html", score=score, token=token)


@bp.route("/language", methods=["POST"])
@csrf.exempt
def set_language():
    # A small sessionless form in every page's header (so that signed-out pages can be shared):
    # the cross-origin check guards it (portal/web/forms.py).
    form = SessionlessForm()
    language = request.form.get("language", "")
    if not form.validate_on_submit() or language not in current_app.config["LANGUAGES"]:
        flash(_("That language is not available."), "error")
        return redirect(url_for("customer.home"))
    if current_user.is_authenticated:
        accounts.set_locale(current_user, language)
    with force_locale(language):
        flash(_("Language changed."), "success")
    back = _back()
    # A lookup result is looked up again in the new language: 307 keeps the POST and its
    # fields (language.js puts the result's fields in the switch's form).
    replay = request.form.get("replay") == "1" and back == url_for("customer.lookup_submit")
    response = redirect(back, 307 if replay else 302)
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
