"""Staff views: the review queue, the review page and its decisions, the offline channel,
registry pages, search and user management. Each view parses a form, calls one service."""

from __future__ import annotations

import dataclasses

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from ..domain import InvoiceRuleError
from ..domain.fields import CLAIM_FIELDS, DISPLAY_ORDER
from ..models import Case, Role, utcnow
from ..services import (
    accounts,
    audit,
    buyers,
    cases,
    dashboard,
    dead_letters,
    evidence_pages,
    findings,
    intake,
    monitoring,
    notify,
    outbox,
    reconcile,
    registry_view,
    review,
    search,
)
from ..services.errors import ServiceError
from ..support.ids import parse_id
from ..web.formerrors import attach_error
from ..web.forms import PortalForm
from ..web.uploads import add_evidence_file
from . import audit_presenters, bp, presenters
from .access import staff_required
from .forms import (
    ApproveForm,
    AssignForm,
    BulkForm,
    ConfirmApprovalForm,
    DecisionForm,
    ExplainFindingForm,
    InviteForm,
    MergeForm,
    OfflineCaseForm,
    PriorityForm,
    QueueFilterForm,
    RejectForm,
    TextForm,
    UserActionForm,
    UserForm,
)
from .presenters import staff_word


def _case_or_404(reference: str) -> Case:
    case = review.case_by_reference(reference)
    if case is None:
        abort(404)
    return case


def _back(case: Case):
    return redirect(url_for("staff.case_review", reference=case.reference))


@bp.route("/")
@staff_required()
def queue():
    form = QueueFilterForm(request.args)
    _filter_choices(form)
    form.validate()
    return render_template(
        "staff/queue.html",
        cases=review.queue(form.queue_filter(), current_user),
        counts=review.counts_by_state(),
        reviewers=review.reviewers(),
        sla_status=review.sla_status,
        now=utcnow(),
        form=form,
        filtered=any(request.args.get(n) for n in form.data if n != "csrf_token"),
    )


def _filter_choices(form: QueueFilterForm) -> None:
    form.state.choices = [SelectChoice("", _("Waiting or in review"))] + [
        SelectChoice(s, staff_word("state", s)) for s in review.QUEUE_STATES
    ]
    form.channel.choices = [SelectChoice("", _("All"))] + [
        SelectChoice(c, staff_word("channel", c)) for c in ("web", "counter", "phone", "email")
    ]
    form.assignee.choices = [
        SelectChoice("", _("Anyone")),
        SelectChoice("me", _("Me")),
        SelectChoice("none", _("Nobody")),
    ] + [SelectChoice(str(u.id), u.email) for u in review.reviewers()]


@bp.route("/queue/bulk", methods=["POST"])
@staff_required()
def queue_bulk():
    form = BulkForm()
    if form.validate_on_submit():
        action, _sep, reviewer_id = form.action.data.partition(":")
        try:
            done = review.bulk(action, request.form.getlist("case"), current_user, reviewer_id)
        except ServiceError as error:
            flash(error.message, "error")
        else:
            flash(_("%(n)d case(s) updated.", n=done), "success")
    else:
        flash(_("Choose an action."), "error")
    return redirect(url_for("staff.queue"))


# ------------------------------------------------------------------------ the review page


def _render_case(case: Case, status: int = 200, **given):
    """The review page; ``given`` forms (with their errors and what was typed) replace the
    fresh ones, so a refused decision is shown beside its fields with the input kept."""
    kinds = presenters.kind_choices()
    forms = {
        "approve_form": ApproveForm(
            formdata=None, data=presenters.prefill_fields(case), kinds=kinds
        ),
        "reject_form": RejectForm(formdata=None),
        "text_form": TextForm(formdata=None),
        "reply_form": TextForm(formdata=None, prefix="reply"),
        "merge_form": MergeForm(formdata=None),
        "assign_form": AssignForm(formdata=None),
        **given,
    }
    forms["assign_form"].reviewer_id.choices = [
        SelectChoice(str(u.id), u.email) for u in review.reviewers()
    ]
    pending = review.pending_second_approval(case)
    confirm_form = (
        ConfirmApprovalForm(
            formdata=None,
            data={"decision_id": str(pending.id), "digest": review.decision_digest(pending)},
        )
        if pending is not None
        else None
    )
    registry = registry_view.for_key(case.claimed_key) if case.claimed_key else None
    page = render_template(
        "staff/case.html",
        case=case,
        rows=presenters.comparison(case, registry.record if registry else None),
        registry=registry,
        approval_fields=presenters.approval_fields(case),
        invoice_fields=DISPLAY_ORDER,
        duplicates=review.duplicates(case),
        pending=pending,
        confirm_form=confirm_form,
        four_eyes_reasons=presenters.FOUR_EYES_REASONS,
        mine=case.assignee_id == current_user.id and case.state == "in_review",
        sla=review.sla_status(case, utcnow()),
        review_limit=review.four_eyes_amount(),
        next_case=_next_case(case),
        **forms,
    )
    return page, status


@bp.route("/cases/<reference>")
@staff_required()
def case_review(reference: str):
    return _render_case(_case_or_404(reference))


def _next_case(case: Case) -> Case | None:
    for candidate in review.queue(review.QueueFilter(), current_user, limit=50):
        if candidate.id != case.id and candidate.assignee_id in (None, current_user.id):
            return candidate
    return None


@bp.route("/cases/<reference>/evidence", methods=["POST"])
@staff_required()
def case_evidence(reference: str):
    case = _case_or_404(reference)
    files = [f for f in request.files.getlist("files") if f.filename]
    if not files:
        flash(_("Choose at least one file."), "error")
    for storage_file in files:
        add_evidence_file(case, storage_file)
    return _back(case)


def _simple(case: Case, act, done: str):
    """A decision that takes no input but the CSRF token: do it, say what happened."""
    if not PortalForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return _back(case)
    try:
        act()
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(done, "success")
    return _back(case)


def _with_form(case: Case, name: str, form, act, done: str, fallback: str):
    """A decision with fields: validate, act; a refusal goes beside its field, input kept."""
    if form.validate_on_submit():
        try:
            act(form)
        except intake.IntakeErrors as error:
            for field_name, (_code, message) in error.errors.items():
                target = form[field_name] if field_name in form else form[fallback]
                target.errors = [*target.errors, message]
        except ServiceError as error:
            if error.field is None:
                # About the case, not a field (taken meanwhile, an approval pending): the
                # decision box may not even be on the page now, so it is said on top.
                flash(error.message, "error")
                return _back(case)
            attach_error(form, error, fallback)
        else:
            if done:
                flash(done, "success")
            return _back(case)
    return _render_case(case, 422, **{name: form})


@bp.route("/evidence/<int:upload_id>/page/<int:number>.png")
@staff_required()
def evidence_page(upload_id: int, number: int):
    """Page ``number`` of a PDF upload, for the viewer's next-page button."""
    upload = evidence_pages.upload_by_id(upload_id)
    png = evidence_pages.page_png(upload, number) if upload is not None else None
    if png is None:
        abort(404)
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/cases/<reference>/claim", methods=["POST"])
@staff_required()
def case_claim(reference: str):
    case = _case_or_404(reference)
    return _simple(
        case,
        lambda: review.claim(case, current_user),
        _("You claimed %(ref)s; it is yours to decide.", ref=case.reference),
    )


@bp.route("/cases/<reference>/release", methods=["POST"])
@staff_required()
def case_release(reference: str):
    case = _case_or_404(reference)
    return _simple(
        case,
        lambda: review.release(case, current_user),
        _("%(ref)s is back in the queue.", ref=case.reference),
    )


@bp.route("/cases/<reference>/withdraw_approval", methods=["POST"])
@staff_required()
def case_withdraw_approval(reference: str):
    case = _case_or_404(reference)
    return _simple(
        case,
        lambda: review.withdraw_pending(case, current_user),
        _(
            "The approval of %(ref)s waiting for a second supervisor was withdrawn.",
            ref=case.reference,
        ),
    )


@bp.route("/cases/<reference>/close_registered", methods=["POST"])
@staff_required()
def case_close_registered(reference: str):
    case = _case_or_404(reference)
    return _simple(
        case,
        lambda: review.close_registered(case, current_user),
        _("%(ref)s closed: the invoice is registered already.", ref=case.reference),
    )


@bp.route("/cases/<reference>/priority", methods=["POST"])
@staff_required()
def case_priority(reference: str):
    case = _case_or_404(reference)
    form = PriorityForm()
    if not form.validate_on_submit():
        flash(_("Unknown priority."), "error")
        return _back(case)
    return _simple(
        case,
        lambda: review.set_priority(case, current_user, form.priority.data),
        _("%(ref)s is urgent now.", ref=case.reference)
        if form.priority.data == "urgent"
        else _("%(ref)s is back to normal priority.", ref=case.reference),
    )


@bp.route("/cases/<reference>/assign", methods=["POST"])
@staff_required()
def case_assign(reference: str):
    case = _case_or_404(reference)
    form = AssignForm()
    form.reviewer_id.choices = [SelectChoice(str(u.id), u.email) for u in review.reviewers()]

    def act(f):
        reviewer = review.staff_member(f.reviewer_id.data)
        if reviewer is None:
            raise ServiceError(_("Choose a reviewer."), field="reviewer_id")
        review.assign(case, current_user, reviewer)

    return _with_form(
        case, "assign_form", form, act, _("%(ref)s assigned.", ref=case.reference), "reviewer_id"
    )


@bp.route("/cases/<reference>/approve", methods=["POST"])
@staff_required()
def case_approve(reference: str):
    case = _case_or_404(reference)
    form = ApproveForm(kinds=presenters.kind_choices())

    def act(f):
        decision = review.approve(
            case, current_user, f.invoice_fields(), other_invoice=bool(f.other_invoice.data)
        )
        if decision.awaiting_second:
            flash(
                _(
                    "Approval of %(ref)s saved; a second supervisor must confirm it.",
                    ref=case.reference,
                ),
                "warning",
            )
        else:
            flash(_("Re-entry of %(ref)s approved.", ref=case.reference), "success")

    return _with_form(case, "approve_form", form, act, "", "number")


@bp.route("/cases/<reference>/confirm", methods=["POST"])
@staff_required()
def case_confirm(reference: str):
    case = _case_or_404(reference)
    form = ConfirmApprovalForm()
    if not form.validate_on_submit():
        flash(_("Nothing is waiting for a second approval."), "error")
        return _back(case)
    return _simple(
        case,
        lambda: review.confirm(
            case, current_user, parse_id(form.decision_id.data), form.digest.data or ""
        ),
        _("Second approval given: re-entry of %(ref)s approved.", ref=case.reference),
    )


@bp.route("/cases/<reference>/reject", methods=["POST"])
@staff_required()
def case_reject(reference: str):
    case = _case_or_404(reference)
    return _with_form(
        case,
        "reject_form",
        RejectForm(),
        lambda f: review.reject(case, current_user, f.reason_code.data, f.text.data or ""),
        _("%(ref)s rejected; the customer is told why.", ref=case.reference),
        "reason_code",
    )


@bp.route("/cases/<reference>/request_info", methods=["POST"])
@staff_required()
def case_request_info(reference: str):
    case = _case_or_404(reference)
    return _with_form(
        case,
        "text_form",
        TextForm(),
        lambda f: review.request_info(case, current_user, f.text.data),
        _("The customer of %(ref)s was asked for more information.", ref=case.reference),
        "text",
    )


@bp.route("/cases/<reference>/reply", methods=["POST"])
@staff_required()
def case_reply(reference: str):
    case = _case_or_404(reference)
    return _with_form(
        case,
        "reply_form",
        TextForm(prefix="reply"),
        lambda f: review.reply(case, current_user, f.text.data),
        _("Message sent to the customer of %(ref)s.", ref=case.reference),
        "text",
    )


@bp.route("/cases/<reference>/merge", methods=["POST"])
@staff_required()
def case_merge(reference: str):
    case = _case_or_404(reference)
    return _with_form(
        case,
        "merge_form",
        MergeForm(),
        lambda f: review.merge(case, current_user, f.into.data),
        _("%(ref)s merged into the other report.", ref=case.reference),
        "into",
    )


@bp.route("/cases/<reference>/registry-refresh", methods=["POST"])
@staff_required()
def case_registry_refresh(reference: str):
    case = _case_or_404(reference)
    return _simple(
        case,
        lambda: registry_view.request_refresh(case.claimed_key, current_user),
        _("The registry is being asked again; this page shows its answer when it comes."),
    )


@bp.route("/cases/<reference>/registry.json")
@staff_required()
def case_registry_state(reference: str):
    """What the page polls while a refresh is on its way: stored state only."""
    case = _case_or_404(reference)
    view = registry_view.for_key(case.claimed_key) if case.claimed_key else None
    return {"refreshing": bool(view and view.refreshing), "as_of": view.as_of_iso if view else None}


@bp.route("/cases/new", methods=["GET", "POST"])
@staff_required()
def offline_case():
    form = OfflineCaseForm()
    if form.validate_on_submit():
        try:
            claimed = cases.parse_claim({n: form[n].data for n in CLAIM_FIELDS})
            case = cases.open_case(
                claimed,
                customer=cases.customer_for_contact(form.contact_email.data),
                channel=form.channel.data,
                contact_email=form.contact_email.data or None,
                contact_phone=form.contact_phone.data or None,
                contact_preference="email" if form.contact_email.data else "phone",
                description=form.description.data or "",
                priority=form.priority.data,
                actor=current_user,
            )
        except (InvoiceRuleError, ServiceError) as error:
            attach_error(form, error, "number")
        else:
            flash(_("Case %(ref)s opened; it is in the queue.", ref=case.reference), "success")
            return redirect(url_for("staff.case_review", reference=case.reference))
    return render_template("staff/offline_case.html", form=form)


@bp.route("/dead-letters", methods=["GET", "POST"], endpoint="dead_letters")
@staff_required()
def dead_letters_view():
    if request.method == "POST":
        if not PortalForm().validate_on_submit():
            flash(_("The form expired; please try again."), "error")
            return redirect(url_for("staff.dead_letters"))
        try:
            if request.form.get("all"):
                n = outbox.retry_dead_matching(
                    request.form.get("error_kind") or None, actor=current_user
                )
            else:
                ids = [parse_id(i) for i in request.form.getlist("submission")]
                if not ids or None in ids:
                    raise ServiceError(_("Tick the invoices to submit again."))
                n = len(outbox.retry_dead(ids, actor=current_user))
        except (ServiceError, ValueError):
            flash(_("Some of those were already submitted again; the list is up to date."), "error")
        else:
            flash(
                _("%(n)d invoice(s) submitted to the registry again.", n=n),
                "success",
            )
        return redirect(url_for("staff.dead_letters"))
    kind = request.args.get("error_kind") or None
    return render_template(
        "staff/dead_letters.html",
        rows=dead_letters.open_letters(kind),
        kinds=dead_letters.error_kinds(),
        kind=kind,
    )


@bp.route("/findings")
@staff_required()
def findings_view():
    kind = request.args.get("kind") or None
    resolved = request.args.get("resolved") == "1"
    return render_template(
        "staff/findings.html",
        views=findings.listing(kind if kind in presenters.FINDINGS else None, resolved),
        kind=kind,
        resolved=resolved,
        counts=reconcile.open_finding_counts(),
        explain_form=ExplainFindingForm(formdata=None),
    )


def _finding_done(act, done: str):
    if not PortalForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
    else:
        try:
            result = act()
        except ServiceError as error:
            flash(error.message, "error")
        else:
            flash(done if result is None else done % {"ref": result.reference}, "success")
            if result is not None:
                return redirect(url_for("staff.case_review", reference=result.reference))
    return redirect(url_for("staff.findings_view"))


@bp.route("/findings/<int:finding_id>/resubmit", methods=["POST"])
@staff_required()
def finding_resubmit(finding_id: int):
    return _finding_done(
        lambda: findings.resubmit(finding_id, current_user),
        _("The invoice was submitted to the registry again; the finding is resolved."),
    )


@bp.route("/findings/<int:finding_id>/reenter", methods=["POST"])
@staff_required()
def finding_reenter(finding_id: int):
    return _finding_done(
        lambda: findings.reenter(finding_id, current_user),
        _("Correction case %(ref)s opened; its approval needs a second supervisor."),
    )


@bp.route("/findings/<int:finding_id>/explain", methods=["POST"])
@staff_required()
def finding_explain(finding_id: int):
    form = ExplainFindingForm()
    if not form.validate_on_submit():
        flash(_("Say why nothing needs doing."), "error")
        return redirect(url_for("staff.findings_view"))
    return _finding_done(
        lambda: findings.explain(finding_id, current_user, form.note.data),
        _("The finding is marked as explained."),
    )


@bp.route("/invoices/<key>")
@staff_required()
def invoice(key: str):
    found = intake.invoice_by_key(key)
    if found is None:
        abort(404)
    return render_template("staff/invoice.html", invoice=found, status=outbox.status_for(found))


@bp.route("/search")
@staff_required()
def search_view():
    q = request.args.get("q", "").strip()
    return render_template("staff/search.html", q=q, results=search.everything(q) if q else None)


@bp.route("/users", methods=["GET", "POST"])
@staff_required(Role.ADMIN)
def users():
    form = UserForm()
    if form.validate_on_submit():
        try:
            accounts.create_user(
                form.email.data,
                form.password.data,
                form.role.data,
                display_name=form.display_name.data or "",
                actor=current_user,
            )
        except ServiceError as error:
            attach_error(form, error, "email")
        else:
            flash(_("Account created."), "success")
            return redirect(url_for("staff.users"))
    return render_template(
        "staff/users.html",
        form=form,
        users=accounts.staff_users(),
        action_form=UserActionForm(formdata=None),
    )


@bp.route("/users/<int:user_id>", methods=["POST"])
@staff_required(Role.ADMIN)
def user_update(user_id: int):
    user = accounts.user_by_id(user_id)
    if user is None:
        abort(404)
    form = UserActionForm()
    if form.validate_on_submit():
        try:
            accounts.update_user(
                current_user, user, form.role.data, form.active.data, form.password.data or ""
            )
        except ServiceError as error:
            flash(error.message, "error")
        else:
            flash(_("Saved."), "success")
    return redirect(url_for("staff.users"))


@bp.route("/users/<int:user_id>/totp-reset", methods=["POST"])
@staff_required(Role.ADMIN)
def user_totp_reset(user_id: int):
    """An admin clears another user's authenticator (audited); they set up a new one at their
    next sign-in."""
    user = accounts.user_by_id(user_id)
    if user is None:
        abort(404)
    if PortalForm().validate_on_submit():
        try:
            accounts.reset_totp(current_user, user)
        except ServiceError as error:
            flash(error.message, "error")
        else:
            flash(_("Two-step sign-in of %(email)s was reset.", email=user.email), "success")
    return redirect(url_for("staff.users"))


def _audit_filter() -> audit.AuditFilter:
    from datetime import UTC, datetime

    from ..domain.shanghai_time import SHANGHAI

    def day(name):
        try:
            value = request.args.get(name)
            # In UTC here, so that a time the database cannot hold fails here (0001-01-01 in
            # Beijing is still year 0 in UTC), not in the query or half-way through the CSV.
            moment = datetime.fromisoformat(value).replace(tzinfo=SHANGHAI) if value else None
            return moment.astimezone(UTC) if moment else None
        except (ValueError, OverflowError):
            flash(_("Dates look like 2026-11-26."), "error")
            return None

    args = request.args
    return audit.AuditFilter(
        actor=args.get("actor") or None,
        action=args.get("action") or None,
        object_type=args.get("object_type") or None,
        object_id=args.get("object_id") or None,
        since=day("since"),
        until=day("until"),
    )


@bp.route("/audit")
@staff_required(Role.SUPERVISOR)
def audit_log():
    found = audit.page(_audit_filter(), before=parse_id(request.args.get("before")))
    return render_template(
        "staff/audit.html",
        found=found,
        actions=audit.actions(),
        args=request.args,
        filters={k: v for k, v in request.args.items() if k != "before" and v},
        action_label=audit_presenters.action_label,
        object_label=audit_presenters.object_label,
        changes=audit_presenters.changes,
    )


@bp.route("/audit.csv")
@staff_required(Role.SUPERVISOR)
def audit_csv():
    return Response(
        stream_with_context(audit.export_csv(_audit_filter())),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


@bp.route("/dashboard")
@staff_required(Role.SUPERVISOR)
def dashboard_view():
    d = dashboard.build()

    def chart(counts: dict, labels: dict):
        return dashboard.bars([(str(labels.get(k, k)), v) for k, v in sorted(counts.items())])

    charts = {
        "states": chart(d.cases_by_state, presenters.CASE_STATES),
        "channels": chart(d.cases_by_channel, presenters.CHANNELS),
        "causes": chart(d.causes, presenters.CAUSES),
    }
    return render_template(
        "staff/dashboard.html",
        d=d,
        charts=charts,
        alerts=monitoring.open_alerts(),
        open_findings=findings.open_count(),
        t=presenters.trend_rows(dashboard.trends()),
    )


@bp.route("/mail")
@bp.route("/mail/<name>")
@staff_required()
def mail(name: str | None = None):
    """The mail the portal sent, when it writes mail to a folder (``make run``)."""
    from ..mail import FolderBackend, MailNotFound, mail_backend

    backend = mail_backend(current_app)
    if not isinstance(backend, FolderBackend):
        return render_template("staff/mail.html", folder=False, messages=[], message=None)
    message = None
    if name:
        try:
            message = backend.read_message(name)
        except MailNotFound:
            abort(404)
        # Single-use links (rating, password reset, address confirmation, invitation) belong
        # to the recipient: staff see that the mail went out, not a link they could use.
        message = dataclasses.replace(
            message, text=notify.masked_for_staff(message.text), html=None
        )
    return render_template(
        "staff/mail.html", folder=True, message=message, messages=backend.list_messages(limit=100)
    )


@bp.route("/buyer-links", methods=["GET", "POST"])
@staff_required()
def buyer_links():
    form = InviteForm()
    invitation_url = None
    if form.validate_on_submit():
        try:
            link, token = buyers.invite(
                current_user, form.email.data, form.buyer_tax_id.data, form.buyer_name.data
            )
        except ServiceError as error:
            attach_error(form, error, "email")
        else:
            # From PUBLIC_URL, never from this request's Host header.
            invitation_url = notify.external_url("customer.accept_invitation", token=token)
            flash(_("Invitation created for %(email)s.", email=link.invited_email), "success")
            form = InviteForm(formdata=None)
    return render_template(
        "staff/buyer_links.html",
        form=form,
        decision=DecisionForm(),
        requests=buyers.pending_requests(),
        invitation_url=invitation_url,
    )


@bp.route("/buyer-links/decide", methods=["POST"])
@staff_required()
def decide_buyer_link():
    form = DecisionForm()
    if form.validate_on_submit() and form.decision.data in ("approve", "reject"):
        try:
            link_id = parse_id(form.link_id.data)
            if link_id is None:
                raise ValueError("no such request")
            buyers.decide(link_id, current_user, form.decision.data == "approve")
        except (ServiceError, ValueError) as error:
            flash(getattr(error, "message", _("That request could not be found.")), "error")
        else:
            flash(_("Decision saved."), "success")
    return redirect(url_for("staff.buyer_links"))
