"""Staff forms."""

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TelField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional

from ..models import Role
from ..services.review import REJECT_REASONS
from ..web.forms import PortalForm


class InviteForm(PortalForm):
    email = EmailField(_l("Customer e-mail"), validators=[DataRequired(), Length(max=254)])
    buyer_tax_id = StringField(_l("Buyer taxpayer ID"), validators=[DataRequired(), Length(max=30)])
    buyer_name = StringField(_l("Buyer name"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Create invitation"))


class DecisionForm(PortalForm):
    link_id = HiddenField(validators=[DataRequired()])
    decision = HiddenField(validators=[DataRequired()])


class ApproveForm(PortalForm):
    """The invoice as it will be re-entered; prefilled from the evidence and the report."""

    code = StringField(_l("Invoice code"), validators=[Optional(), Length(max=40)])
    number = StringField(_l("Invoice number"), validators=[Length(max=40)])
    kind = StringField(_l("Kind (optional)"), validators=[Optional(), Length(max=24)])
    issue_date = StringField(_l("Issue date"), validators=[Length(max=20)])
    amount = StringField(_l("Amount excluding tax"), validators=[Length(max=30)])
    tax = StringField(_l("Tax"), validators=[Length(max=30)])
    total = StringField(_l("Total including tax"), validators=[Length(max=30)])
    check_code = StringField(_l("Check code"), validators=[Optional(), Length(max=40)])
    buyer_tax_id = StringField(_l("Buyer taxpayer ID"), validators=[Length(max=30)])
    buyer_name = StringField(_l("Buyer name"), validators=[Length(max=200)])
    seller_tax_id = StringField(_l("Seller taxpayer ID"), validators=[Length(max=30)])
    other_invoice = BooleanField(
        _l("This is another invoice than the one reported (a second supervisor must confirm)")
    )
    submit = SubmitField(_l("Approve re-entry"))


class ConfirmApprovalForm(PortalForm):
    """The second approval names the decision it confirms: its id and the digest of its fields
    (``services.review.decision_digest``), as shown on the page."""

    decision_id = HiddenField(validators=[DataRequired()])
    digest = HiddenField(validators=[DataRequired(), Length(max=64)])


class RejectForm(PortalForm):
    reason_code = SelectField(
        _l("Reason"),
        choices=[SelectChoice(k, v) for k, v in REJECT_REASONS.items()],
        validators=[DataRequired()],
    )
    text = TextAreaField(
        _l("Explanation for the customer"),
        validators=[Optional(), Length(max=2000)],
        render_kw={"rows": 3},
    )
    submit = SubmitField(_l("Reject"))


class TextForm(PortalForm):
    text = TextAreaField(
        _l("Message"), validators=[DataRequired(), Length(max=4000)], render_kw={"rows": 3}
    )


class MergeForm(PortalForm):
    into = StringField(
        _l("Merge into report"),
        validators=[DataRequired(), Length(max=20)],
        render_kw={"placeholder": "BJ-2026-000001"},
    )


class AssignForm(PortalForm):
    reviewer_id = SelectField(_l("Reviewer"), validators=[DataRequired()], choices=[])


class OfflineCaseForm(PortalForm):
    channel = SelectField(
        _l("Channel"),
        choices=[
            SelectChoice("counter", _l("At the counter")),
            SelectChoice("phone", _l("By phone")),
            SelectChoice("email", _l("By e-mail")),
        ],
    )
    contact_email = EmailField(
        _l("Customer e-mail (optional)"), validators=[Optional(), Email(), Length(max=254)]
    )
    contact_phone = TelField(
        _l("Customer phone (optional)"), validators=[Optional(), Length(max=32)]
    )
    code = StringField(_l("Invoice code"), validators=[Optional(), Length(max=40)])
    number = StringField(_l("Invoice number"), validators=[DataRequired(), Length(max=40)])
    issue_date = DateField(_l("Issue date"), validators=[Optional()], render_kw={"type": "date"})
    amount = StringField(_l("Amount excluding tax"), validators=[Optional(), Length(max=30)])
    total = StringField(_l("Total including tax"), validators=[Optional(), Length(max=30)])
    check_code = StringField(_l("Check code"), validators=[Optional(), Length(max=40)])
    buyer_tax_id = StringField(_l("Buyer taxpayer ID"), validators=[Optional(), Length(max=30)])
    priority = SelectField(
        _l("Priority"),
        choices=[SelectChoice("normal", _l("Normal")), SelectChoice("urgent", _l("Urgent"))],
        default="normal",
    )
    description = TextAreaField(
        _l("What the customer said"), validators=[Optional(), Length(max=4000)]
    )
    submit = SubmitField(_l("Open the case"))


class UserForm(PortalForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=100)])
    role = SelectField(
        _l("Role"), choices=[SelectChoice(r.value, r.value) for r in Role if r != Role.CUSTOMER]
    )
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(max=128)])
    submit = SubmitField(_l("Create staff account"))


class UserActionForm(PortalForm):
    role = SelectField(_l("Role"), choices=[SelectChoice(r.value, r.value) for r in Role])
    active = BooleanField(_l("Active"))
    password = PasswordField(
        _l("New password (optional)"), validators=[Optional(), Length(max=128)]
    )
    submit = SubmitField(_l("Save"))
