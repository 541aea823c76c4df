"""The portal's two kinds of form, both Flask-WTF's ``FlaskForm`` as it comes.

``PortalForm``: a form that acts for someone (an account, a case, a staff decision) carries
Flask-WTF's CSRF token, a random value kept in the session and signed into the page;
``CSRFProtect`` checks it on every POST.

``SessionlessForm``: a form anyone may send and that acts for no one — the invoice lookup, its
file scan, the language switch. It carries no token, so its page needs no session and is the
same for every signed-out visitor (``portal/web/pages.py`` keeps it whole). Its views are
``@csrf.exempt``; what protects them is what protects every browser POST
(``portal/web/origin.py``: a cross-site request is refused by its ``Sec-Fetch-Site`` or
``Origin`` header) and the session cookie's ``SameSite=Lax`` (a cross-site POST carries no
session, so it could only do what an anonymous visitor does). README "CSRF" argues the choice.
"""

from __future__ import annotations

from flask_babel import LazyString
from flask_wtf import FlaskForm


class _Form(FlaskForm):
    """Flask-WTF's form, its texts translated once.

    Labels and descriptions are declared with ``lazy_gettext`` (the class exists before any
    request has a language), and a lazy string translates itself again at each use: a test of
    its truth, Jinja asking it for ``__html__`` before escaping it, its text — two or three
    catalogue look-ups for each text a page shows. A form lives for one request, in that
    request's language, so each field's lazy label and description are translated once, here
    (plain text and markup are left as they are)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self:
            if isinstance(field.label.text, LazyString):
                field.label.text = str(field.label.text)
            if isinstance(field.description, LazyString):
                field.description = str(field.description)


class PortalForm(_Form):
    """A form with Flask-WTF's session-bound CSRF token."""


class SessionlessForm(_Form):
    """A form without a CSRF token, for anonymous actions that need no session."""

    class Meta:
        csrf = False
