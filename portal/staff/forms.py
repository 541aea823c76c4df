"""Staff forms."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


class InviteForm(FlaskForm):
    email = EmailField(_l("Customer e-mail"), validators=[DataRequired(), Length(max=254)])
    buyer_tax_id = StringField(_l("Buyer taxpayer ID"), validators=[DataRequired(), Length(max=30)])
    buyer_name = StringField(_l("Buyer name"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Create invitation"))


class DecisionForm(FlaskForm):
    link_id = HiddenField(validators=[DataRequired()])
    decision = HiddenField(validators=[DataRequired()])
