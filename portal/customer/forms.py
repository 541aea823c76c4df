"""Customer forms. Field shapes only: the invoice rules live in portal/domain and run in the
services, so the form, the API and the upload confirmation all judge input the same way."""

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, MultipleFileField  # files only, never a text field
from wtforms import (
    DateField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TelField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from ..web.forms import PortalForm, SessionlessForm

NUMERIC = {"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"}
DECIMAL = {"inputmode": "decimal", "autocomplete": "off", "placeholder": "0.00"}


def code_field() -> StringField:
    """The invoice code field (one per form: WTForms fields cannot be shared between forms)."""
    return StringField(
        _l("Invoice code (发票代码)"),
        validators=[Optional(), Length(max=40)],
        description=_l("10 or 12 digits. Leave empty for a fully digital invoice (数电票)."),
        render_kw={**NUMERIC, "maxlength": 40},
    )


class LookupForm(SessionlessForm):  # anonymous: no session, no token (web/forms.py)
    code = code_field()
    number = StringField(
        _l("Invoice number (发票号码)"),
        validators=[Optional(), Length(max=40)],
        description=_l("8 digits, or 20 digits for a fully digital invoice."),
        render_kw={**NUMERIC, "maxlength": 40},
    )
    issue_date = StringField(
        _l("Issue date"),
        validators=[Optional(), Length(max=20)],
        description=_l("Pick the date printed on the invoice (开票日期)."),
        render_kw={"type": "date"},
    )
    amount = StringField(
        _l("Amount excluding tax"),
        validators=[Optional(), Length(max=30)],
        description=_l("Special VAT invoices (专票): the amount before tax (合计金额)."),
        render_kw=DECIMAL,
    )
    total = StringField(
        _l("Total including tax"),
        validators=[Optional(), Length(max=30)],
        description=_l("Fully digital invoices (数电票): the total with tax (价税合计)."),
        render_kw=DECIMAL,
    )
    check_code_last6 = StringField(
        _l("Check code, last 6 digits"),
        validators=[Optional(), Length(max=40)],
        description=_l("Ordinary invoices (普票): the last 6 digits of the 校验码."),
        render_kw={**NUMERIC, "maxlength": 40},
    )
    qr_text = TextAreaField(
        _l("Or paste the text of the invoice's QR code"),
        validators=[Optional(), Length(max=400)],
        description=_l("It starts with 01, — scanning the QR code with a phone shows it."),
        render_kw={"rows": 2, "autocomplete": "off", "spellcheck": "false"},
    )
    submit = SubmitField(_l("Look it up"))


class ReportForm(PortalForm):
    code = code_field()
    number = StringField(
        _l("Invoice number (发票号码)"),
        validators=[DataRequired(_l("Enter the invoice number.")), Length(max=40)],
        render_kw={**NUMERIC, "maxlength": 40},
    )
    issue_date = DateField(
        _l("Issue date"),
        validators=[DataRequired(_l("Enter the issue date."))],
        description=_l("Pick the date printed on the invoice (开票日期)."),
        render_kw={"type": "date"},
    )
    amount = StringField(
        _l("Amount excluding tax"), validators=[Optional(), Length(max=30)], render_kw=DECIMAL
    )
    total = StringField(
        _l("Total including tax"), validators=[Optional(), Length(max=30)], render_kw=DECIMAL
    )
    check_code = StringField(
        _l("Check code (校验码)"),
        validators=[Optional(), Length(max=40)],
        description=_l("All 20 digits if the invoice has one, or the last 6."),
        render_kw={**NUMERIC, "maxlength": 40},
    )
    buyer_tax_id = StringField(
        _l("Buyer taxpayer ID (optional)"),
        validators=[Optional(), Length(max=30)],
        render_kw={"autocomplete": "off", "maxlength": 30, "autocapitalize": "characters"},
    )
    contact_preference = RadioField(
        _l("How should we contact you?"),
        choices=[SelectChoice("email", _l("E-mail")), SelectChoice("phone", _l("Phone"))],
        default="email",
    )
    contact_phone = TelField(
        _l("Phone number"),
        validators=[Optional(), Length(max=32)],
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )
    description = TextAreaField(
        _l("Anything else we should know?"),
        validators=[Optional(), Length(max=4000)],
        render_kw={"rows": 4},
    )
    files = MultipleFileField(
        _l("Photo, scan, PDF, OFD or XML of the invoice (optional, helps us most)"),
        description=_l("JPEG, PNG, WebP, HEIC, PDF, OFD or XML; up to 20 MB each."),
    )
    submit = SubmitField(_l("Send report"))


class MessageForm(PortalForm):
    body = TextAreaField(
        _l("Your message"),
        validators=[DataRequired(_l("Write a message first.")), Length(max=4000)],
        render_kw={"rows": 4},
    )
    submit = SubmitField(_l("Send"))


class WithdrawForm(PortalForm):
    reason = TextAreaField(
        _l("Why (optional)"), validators=[Optional(), Length(max=1000)], render_kw={"rows": 2}
    )
    submit = SubmitField(_l("Withdraw this report"))


class BuyerLinkForm(PortalForm):
    buyer_tax_id = StringField(
        _l("Buyer taxpayer ID (统一社会信用代码)"),
        validators=[DataRequired(_l("Enter the taxpayer ID.")), Length(max=30)],
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "maxlength": 30},
    )
    buyer_name = StringField(
        _l("Buyer name"), validators=[DataRequired(_l("Enter the name.")), Length(max=200)]
    )
    note = StringField(
        _l("How are you related to this buyer? (optional)"),
        validators=[Optional(), Length(max=500)],
    )
    submit = SubmitField(_l("Request access"))


class InvoiceFilterForm(PortalForm):
    class Meta:
        csrf = False  # a GET search form: it changes nothing

    state = SelectField(
        _l("Registry state"),
        choices=[
            SelectChoice("", _l("All")),
            SelectChoice("registered", _l("Registered")),
            SelectChoice("pending", _l("Pending")),
            SelectChoice("failed", _l("Failed")),
            SelectChoice("conflict", _l("Conflict")),
        ],
        default="",
        validators=[Optional()],
    )
    date_from = DateField(_l("Issued from"), validators=[Optional()], render_kw={"type": "date"})
    date_to = DateField(_l("Issued until"), validators=[Optional()], render_kw={"type": "date"})
    amount_min = StringField(
        _l("Total from"), validators=[Optional(), Length(max=30)], render_kw=DECIMAL
    )
    amount_max = StringField(
        _l("Total up to"), validators=[Optional(), Length(max=30)], render_kw=DECIMAL
    )
    number = StringField(
        _l("Invoice number contains"), validators=[Optional(), Length(max=20)], render_kw=NUMERIC
    )


class EvidenceForm(PortalForm):
    files = MultipleFileField(
        _l("Photo, scan, PDF, OFD or XML of the invoice"),
        validators=[DataRequired(_l("Choose at least one file."))],
        description=_l("JPEG, PNG, WebP, HEIC, PDF, OFD or XML; up to 20 MB each."),
    )
    submit = SubmitField(_l("Upload"))


class ConfirmFieldsForm(PortalForm):
    """What the customer confirms (or corrects) after seeing what was read from the evidence."""

    code = StringField(
        _l("Invoice code"), validators=[Optional(), Length(max=40)], render_kw=NUMERIC
    )
    number = StringField(
        _l("Invoice number"), validators=[Optional(), Length(max=40)], render_kw=NUMERIC
    )
    issue_date = StringField(_l("Issue date"), validators=[Optional(), Length(max=20)])
    amount = StringField(
        _l("Amount excluding tax"), validators=[Optional(), Length(max=30)], render_kw=DECIMAL
    )
    tax = StringField(_l("Tax"), validators=[Optional(), Length(max=30)], render_kw=DECIMAL)
    total = StringField(
        _l("Total including tax"), validators=[Optional(), Length(max=30)], render_kw=DECIMAL
    )
    check_code = StringField(
        _l("Check code"), validators=[Optional(), Length(max=40)], render_kw=NUMERIC
    )
    buyer_tax_id = StringField(_l("Buyer taxpayer ID"), validators=[Optional(), Length(max=30)])
    submit = SubmitField(_l("These are right"))


class ScanForm(SessionlessForm):
    file = FileField(
        _l("Or read it from a photo, PDF, OFD or XML of the invoice"),
        validators=[DataRequired(_l("Choose a file."))],
        description=_l("The file is read to fill the form and then discarded."),
    )
