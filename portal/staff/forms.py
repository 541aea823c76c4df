"""Staff forms."""

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TelField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional, ValidationError

from ..domain import (
    InvoiceRuleError,
    parse_check_code,
    parse_issue_date,
    parse_money,
    parse_taxpayer_id,
)
from ..domain.fields import WIRE_FIELDS
from ..models import Role
from ..services import intake
from ..services.review import REJECT_REASONS
from ..web.forms import PortalForm

ROLE_NAMES = {
    "customer": _l("Customer"),
    "reviewer": _l("Reviewer"),
    "supervisor": _l("Supervisor"),
    "admin": _l("Administrator"),
}


class InviteForm(PortalForm):
    email = EmailField(_l("Customer e-mail"), validators=[DataRequired(), Length(max=254)])
    buyer_tax_id = StringField(_l("Buyer taxpayer ID"), validators=[DataRequired(), Length(max=30)])
    buyer_name = StringField(_l("Buyer name"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Create invitation"))


class DecisionForm(PortalForm):
    link_id = HiddenField(validators=[DataRequired()])
    decision = HiddenField(validators=[DataRequired()])


def _language() -> str:
    from ..web.i18n import current_language

    return current_language()


def _rule(field, parse) -> None:
    """Run one domain rule on a field's text; its refusal becomes the field's error."""
    if not (field.data or "").strip():
        return
    try:
        parse(field.data)
    except InvoiceRuleError as error:
        raise ValidationError(error.message(_language())) from None


class ApproveForm(PortalForm):
    """The invoice as it will be re-entered; prefilled from what the customer confirmed and
    what the evidence read. Each field's own rule is its ``validate_<field>``; the rules
    between fields (kind against code, amount + tax = total, a Beijing invoice) run in
    ``validate`` through the same intake rules as the ledger, so ``form.issued`` is the
    canonical invoice when the form validates."""

    code = StringField(
        _l("Invoice code"),
        validators=[Optional(), Length(max=40)],
        description=_l("10 or 12 digits; empty for a 数电票."),
    )
    number = StringField(
        _l("Invoice number"),
        validators=[DataRequired(_l("Enter the invoice number.")), Length(max=40)],
    )
    kind = SelectField(
        _l("Invoice kind"),
        choices=[],
        validate_choice=True,
        description=_l(
            "A legacy invoice's kind follows from its code; for a 数电票 choose special or "
            "ordinary."
        ),
    )
    issue_date = StringField(
        _l("Issue date"),
        validators=[DataRequired(_l("Enter the issue date.")), Length(max=20)],
        render_kw={"placeholder": "2026-05-01"},
    )
    amount = StringField(
        _l("Amount excluding tax"),
        validators=[DataRequired(_l("Enter the amount excluding tax.")), Length(max=30)],
        render_kw={"inputmode": "decimal"},
    )
    tax = StringField(
        _l("Tax"),
        validators=[DataRequired(_l("Enter the tax.")), Length(max=30)],
        render_kw={"inputmode": "decimal"},
    )
    total = StringField(
        _l("Total including tax"),
        validators=[DataRequired(_l("Enter the total including tax.")), Length(max=30)],
        render_kw={"inputmode": "decimal"},
    )
    check_code = StringField(
        _l("Check code"),
        validators=[Optional(), Length(max=40)],
        description=_l("20 digits, on ordinary invoices only."),
    )
    buyer_tax_id = StringField(
        _l("Buyer taxpayer ID"),
        validators=[DataRequired(_l("Enter the buyer taxpayer ID.")), Length(max=30)],
    )
    buyer_name = StringField(
        _l("Buyer name"),
        validators=[DataRequired(_l("Enter the buyer name.")), Length(max=200)],
    )
    seller_tax_id = StringField(
        _l("Seller taxpayer ID"),
        validators=[DataRequired(_l("Enter the seller taxpayer ID.")), Length(max=30)],
    )
    other_invoice = BooleanField(
        _l("This is another invoice than the one reported (a second supervisor must confirm)")
    )
    submit = SubmitField(_l("Approve re-entry"))

    issued = None  # the canonical invoice, once ``validate`` passed

    def __init__(self, *args, kinds=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = list(kinds)

    def validate_issue_date(self, field):
        _rule(field, parse_issue_date)

    def validate_amount(self, field):
        _rule(field, lambda v: parse_money(v, field="amount"))

    def validate_tax(self, field):
        _rule(field, lambda v: parse_money(v, field="tax"))

    def validate_total(self, field):
        _rule(field, lambda v: parse_money(v, field="total"))

    def validate_check_code(self, field):
        _rule(field, parse_check_code)

    def validate_buyer_tax_id(self, field):
        _rule(field, parse_taxpayer_id)

    def validate_seller_tax_id(self, field):
        _rule(field, parse_taxpayer_id)

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        try:
            self.issued = intake.validate_issued(self.invoice_fields(), locale=_language())
        except intake.IntakeErrors as error:
            for name, (_code, message) in error.errors.items():
                target = self[name] if name in self else self.number  # noqa: SIM401 (a Form has no .get)
                target.errors = [*target.errors, message]
            return False
        return True

    def invoice_fields(self) -> dict[str, str]:
        """The invoice's fields as typed (the form's other fields left out)."""
        return {name: (self[name].data or "") for name in WIRE_FIELDS}


class ConfirmApprovalForm(PortalForm):
    """The second approval names the decision it confirms: its id and the digest of its fields
    (``services.review.decision_digest``), as shown on the page."""

    decision_id = HiddenField(validators=[DataRequired()])
    digest = HiddenField(validators=[DataRequired(), Length(max=64)])


class RejectForm(PortalForm):
    reason_code = SelectField(
        _l("Reason"),
        choices=[SelectChoice(k, v) for k, v in REJECT_REASONS.items()],
        validators=[DataRequired(_l("Choose a reason."))],
    )
    text = TextAreaField(
        _l("Explanation for the customer"),
        validators=[Optional(), Length(max=2000)],
        render_kw={"rows": 3},
    )
    submit = SubmitField(_l("Reject"))


class TextForm(PortalForm):
    text = TextAreaField(
        _l("Message"),
        validators=[DataRequired(_l("Write the message.")), Length(max=4000)],
        render_kw={"rows": 3},
    )


class MergeForm(PortalForm):
    into = StringField(
        _l("Merge into report"),
        validators=[DataRequired(_l("Enter the reference of the other report.")), Length(max=20)],
        render_kw={"placeholder": "BJ-2026-000001"},
    )


class AssignForm(PortalForm):
    reviewer_id = SelectField(
        _l("Reviewer"), validators=[DataRequired(_l("Choose a reviewer."))], choices=[]
    )


class BulkForm(PortalForm):
    """The queue's bulk action: ``claim``, ``release``, ``auto_assign`` or ``assign:<id>``."""

    action = StringField(validators=[DataRequired(), Length(max=40)])


class ExplainFindingForm(PortalForm):
    note = TextAreaField(
        _l("Why nothing needs doing"),
        validators=[DataRequired(_l("Say why nothing needs doing.")), Length(max=500)],
        render_kw={"rows": 2},
    )


class PriorityForm(PortalForm):
    priority = SelectField(
        _l("Priority"),
        choices=[SelectChoice("normal", _l("Normal")), SelectChoice("urgent", _l("Urgent"))],
    )


class QueueFilterForm(PortalForm):
    """The queue's filters, read from the query string (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    state = SelectField(_l("State"), choices=[], validate_choice=False)
    channel = SelectField(_l("Channel"), choices=[], validate_choice=False)
    assignee = SelectField(_l("Assignee"), choices=[], validate_choice=False)
    region = SelectField(
        _l("Region"),
        choices=[
            SelectChoice("", _l("All")),
            SelectChoice("beijing", _l("Beijing")),
            SelectChoice("other", _l("Other regions")),
        ],
        validate_choice=False,
    )
    older_than_hours = IntegerField(
        _l("Older than (hours)"),
        validators=[
            Optional(),
            NumberRange(min=0, max=24 * 3650, message=_l("Between 0 and 87600 hours.")),
        ],
        render_kw={"inputmode": "numeric"},
    )
    amount_min = StringField(
        _l("Amount from"),
        validators=[Optional(), Length(max=30)],
        render_kw={"inputmode": "decimal"},
    )
    amount_max = StringField(
        _l("Amount up to"),
        validators=[Optional(), Length(max=30)],
        render_kw={"inputmode": "decimal"},
    )

    def validate_amount_min(self, field):
        _rule(field, lambda v: parse_money(v, field="amount"))

    def validate_amount_max(self, field):
        _rule(field, lambda v: parse_money(v, field="amount"))

    def queue_filter(self):
        """The valid filters as a ``review.QueueFilter`` (an invalid one is left out)."""
        from ..services.review import QueueFilter

        def money(field):
            if field.errors or not (field.data or "").strip():
                return None
            return parse_money(field.data, field="amount")

        valid = {name: not self[name].errors for name in ("older_than_hours",)}
        return QueueFilter(
            state=self.state.data or None,
            channel=self.channel.data or None,
            older_than_hours=(self.older_than_hours.data or None)
            if valid["older_than_hours"]
            else None,
            assignee=self.assignee.data or None,
            region=self.region.data or None,
            amount_min=money(self.amount_min),
            amount_max=money(self.amount_max),
        )


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
        _l("Role"),
        choices=[SelectChoice(r.value, ROLE_NAMES[r.value]) for r in Role if r != Role.CUSTOMER],
    )
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(max=128)])
    submit = SubmitField(_l("Create staff account"))


class UserActionForm(PortalForm):
    role = SelectField(
        _l("Role"), choices=[SelectChoice(r.value, ROLE_NAMES[r.value]) for r in Role]
    )
    active = BooleanField(_l("Active"))
    password = PasswordField(
        _l("New password (optional)"), validators=[Optional(), Length(max=128)]
    )
    submit = SubmitField(_l("Save"))
