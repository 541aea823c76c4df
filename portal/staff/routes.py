"""Staff views."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..formerrors import attach_error
from ..services import buyers
from ..services.errors import ServiceError
from . import bp
from .access import staff_required
from .forms import DecisionForm, InviteForm


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
            invitation_url = url_for("customer.accept_invitation", token=token, _external=True)
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
            buyers.decide(int(form.link_id.data), current_user, form.decision.data == "approve")
        except (ServiceError, ValueError) as error:
            flash(getattr(error, "message", _("That request could not be found.")), "error")
        else:
            flash(_("Decision saved."), "success")
    return redirect(url_for("staff.buyer_links"))
