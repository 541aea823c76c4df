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
from sqlalchemy import select
from wtforms import SelectChoice

from ..customer import presenters
from ..domain import InvoiceRuleError, parse_money
from ..extensions import db
from ..models import Case, Invoice, Role, User, utcnow
from ..services import (
    accounts,
    audit,
    buyers,
    cases,
    dashboard,
    intake,
    monitoring,
    notify,
    outbox,
    review,
    search,
)
from ..services.errors import ServiceError
from ..support.ids import parse_id
from ..web.formerrors import attach_error
from ..web.forms import PortalForm
from ..web.uploads import add_evidence_file
from . import bp
from .access import staff_required
from .forms import (
    ApproveForm,
    AssignForm,
    ConfirmApprovalForm,
    DecisionForm,
    InviteForm,
    MergeForm,
    OfflineCaseForm,
    RejectForm,
    TextForm,
    UserActionForm,
    UserForm,
)


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
    args = request.args
    money = {}
    for name in ("amount_min", "amount_max"):
        try:
            money[name] = parse_money(args.get(name), field=name) if args.get(name) else None
        except InvoiceRuleError as error:
            flash(error.message(), "error")
            money[name] = None
    f = review.QueueFilter(
        state=args.get("state") or None,
        channel=args.get("channel") or None,
        # Bounded: a week of years would overflow the date arithmetic.
        older_than_hours=min(max(args.get("older_than_hours", type=int) or 0, 0), 24 * 3650)
        or None,
        assignee=args.get("assignee"),
        region=args.get("region") or None,
        **money,
    )
    return render_template(
        "staff/queue.html",
        cases=review.queue(f, current_user),
        counts=review.counts_by_state(),
        reviewers=review.reviewers(),
        sla_status=review.sla_status,
        now=utcnow(),
        args=args,
    )


@bp.route("/queue/bulk", methods=["POST"])
@staff_required()
def queue_bulk():
    # CSRFProtect has already checked the token of every POST.
    chosen = [review.case_by_reference(r) for r in request.form.getlist("case")]
    chosen = [c for c in chosen if c is not None]
    action = request.form.get("action")
    done = 0
    try:
        if action == "claim":
            for case in chosen:
                try:
                    review.claim(case, current_user)
                    done += 1
                except ServiceError:
                    continue
        elif action == "auto_assign":
            done = review.auto_assign(chosen, current_user)
        elif action and action.startswith("assign:"):
            reviewer_id = parse_id(action.split(":", 1)[1])
            reviewer = db.session.get(User, reviewer_id) if reviewer_id else None
            if reviewer is None:
                raise ServiceError(_("Choose a reviewer."))
            for case in chosen:
                review.assign(case, current_user, reviewer)
                done += 1
        elif action == "release":
            for case in chosen:
                review.release(case, current_user)
                done += 1
        else:
            abort(400)
    except (ServiceError, ValueError) as error:
        flash(getattr(error, "message", str(error)), "error")
    flash(_("%(n)d case(s) updated.", n=done), "success")
    return redirect(url_for("staff.queue"))


@bp.route("/cases/<reference>")
@staff_required()
def case_review(reference: str):
    case = _case_or_404(reference)
    registry = review.registry_record(case.claimed_key) if case.claimed_key else None
    approve_form = ApproveForm(formdata=None, data=review.prefill_fields(case))
    pending = review.pending_second_approval(case)
    confirm_form = (
        ConfirmApprovalForm(
            formdata=None,
            data={"decision_id": str(pending.id), "digest": review.decision_digest(pending)},
        )
        if pending is not None
        else None
    )
    assign_form = AssignForm(formdata=None)
    assign_form.reviewer_id.choices = [SelectChoice(str(u.id), u.email) for u in review.reviewers()]
    return render_template(
        "staff/case.html",
        case=case,
        rows=review.comparison(case, registry),
        registry=registry,
        duplicates=review.duplicates(case),
        pending=pending,
        confirm_form=confirm_form,
        four_eyes_reasons=review.FOUR_EYES_REASONS,
        mine=case.assignee_id == current_user.id and case.state == "in_review",
        approve_form=approve_form,
        reject_form=RejectForm(formdata=None),
        text_form=TextForm(formdata=None),
        merge_form=MergeForm(formdata=None),
        assign_form=assign_form,
        sla=review.sla_status(case, utcnow()),
        review_limit=review.four_eyes_amount(),
        next_case=_next_case(case),
    )


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


@bp.route("/cases/<reference>/<action>", methods=["POST"])
@staff_required()
def case_action(reference: str, action: str):
    case = _case_or_404(reference)
    try:
        if action == "claim":
            review.claim(case, current_user)
        elif action == "release":
            review.release(case, current_user)
        elif action == "assign":
            reviewer_id = parse_id(request.form.get("reviewer_id"))
            reviewer = db.session.get(User, reviewer_id) if reviewer_id else None
            if reviewer is None:
                raise ServiceError(_("Choose a reviewer."))
            review.assign(case, current_user, reviewer)
        elif action == "approve":
            form = ApproveForm()
            fields = {name: form[name].data for name in intake.CSV_HEADER}
            decision = review.approve(
                case, current_user, fields, other_invoice=bool(form.other_invoice.data)
            )
            if decision.awaiting_second:
                flash(_("A second supervisor must confirm this approval."), "warning")
                return _back(case)
        elif action == "confirm":
            form = ConfirmApprovalForm()
            review.confirm(
                case, current_user, parse_id(form.decision_id.data), form.digest.data or ""
            )
        elif action == "withdraw_approval":
            review.withdraw_pending(case, current_user)
        elif action == "reject":
            form = RejectForm()
            review.reject(case, current_user, form.reason_code.data or "", form.text.data or "")
        elif action == "request_info":
            review.request_info(case, current_user, request.form.get("text", ""))
        elif action == "reply":
            review.reply(case, current_user, request.form.get("text", ""))
        elif action == "merge":
            review.merge(case, current_user, request.form.get("into", ""))
        elif action == "close_registered":
            review.close_registered(case, current_user)
        elif action == "priority":
            review.set_priority(case, current_user, request.form.get("priority", ""))
        else:
            abort(404)
    except intake.IntakeErrors as error:
        for name, (_code, message) in error.errors.items():
            flash(f"{name}: {message}", "error")
        return _back(case)
    except ServiceError as error:
        flash(error.message, "error")
        return _back(case)
    flash(_("Done."), "success")
    return _back(case)


@bp.route("/cases/new", methods=["GET", "POST"])
@staff_required()
def offline_case():
    form = OfflineCaseForm()
    if form.validate_on_submit():
        try:
            claimed = cases.parse_claim({n: form[n].data for n in cases.CLAIM_FIELDS})
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


@bp.route("/dead-letters", methods=["GET", "POST"])
@staff_required()
def dead_letters():
    if request.method == "POST":
        try:
            if request.form.get("all"):
                n = outbox.retry_dead_matching(
                    request.form.get("error_kind") or None, actor=current_user
                )
            else:
                ids = [parse_id(i) for i in request.form.getlist("submission")]
                if None in ids:
                    raise ServiceError(_("Tick the dead letters to retry."))
                if not ids:
                    raise ServiceError(_("Tick the dead letters to retry."))
                n = len(outbox.retry_dead(ids, actor=current_user))
        except (ServiceError, ValueError) as error:
            flash(getattr(error, "message", str(error)), "error")
        else:
            flash(_("%(n)d dead letter(s) queued again.", n=n), "success")
        return redirect(url_for("staff.dead_letters"))
    kind = request.args.get("error_kind") or None
    return render_template("staff/dead_letters.html", rows=outbox.dead_letters(kind), kind=kind)


@bp.route("/invoices/<key>")
@staff_required()
def invoice(key: str):
    found = db.session.scalar(select(Invoice).where(Invoice.key == key))
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
    user = db.session.get(User, user_id) if parse_id(user_id) else None
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
    user = db.session.get(User, user_id) if parse_id(user_id) else None
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
    return render_template(
        "staff/audit.html", events=audit.search(_audit_filter()), args=request.args
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
        "staff/dashboard.html", d=d, charts=charts, alerts=monitoring.open_alerts()
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
