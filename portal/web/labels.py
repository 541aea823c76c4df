"""The invoice's fields as people read them, translated: one table for customer and staff pages.

(The pure rules in ``portal.domain.messages`` keep their own (zh_CN, en) pairs: the domain
imports nothing of Flask's.)
"""

from flask_babel import lazy_gettext as _l

FIELD_LABELS = {
    "code": _l("Invoice code"),
    "number": _l("Invoice number"),
    "kind": _l("Invoice kind"),
    "issue_date": _l("Issue date"),
    "amount": _l("Amount excluding tax"),
    "tax": _l("Tax"),
    "total": _l("Total including tax"),
    "check_code": _l("Check code"),
    "buyer_tax_id": _l("Buyer taxpayer ID"),
    "buyer_name": _l("Buyer name"),
    "seller_tax_id": _l("Seller taxpayer ID"),
}
