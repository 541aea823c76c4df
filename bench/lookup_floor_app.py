"""A reference for bench/lookup.py: the least a lookup of the portal's shape costs with the
portal's libraries and, of the portal's own code, only its lookup form (the "lookup floor").

``POST /lookup`` as the portal's form sends it (code, number, issue date, last 6 of the check
code): the portal's ``LookupForm`` (its seven fields, their validators and attributes, the
labels translated by Flask-Babel from the portal's catalogues) parses and validates it; one
Flask-Limiter limit of two windows counts it in Redis; Flask-SQLAlchemy reads the invoice by
its key and records the lookup in one transaction; Jinja renders a page of the size of the
portal's answer with the seven fields rendered again by WTForms. What it leaves out is all
the portal does besides: the history of submissions, the diagnosis and its messages, the
registry's health, the daily count of failed checks, the second (per-user) limit, the lookup
being counted only when it looked something up, hooks, metrics and headers. The portal's
form lookup cannot cost less than this, so its ratio to hello bounds what a bar for it can ask
(an API lookup answers JSON, without the page, and may come under it).

    gunicorn bench.lookup_floor_app:app   (DATABASE_URL, REDIS_URL, FLOOR_PAGE_BYTES)
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, render_template
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from jinja2 import DictLoader
from sqlalchemy import text

from portal.customer.forms import LookupForm
from portal.domain.fields import LOOKUP_FIELDS

ROOT = Path(__file__).resolve().parent.parent
app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("SECRET_KEY", "bench-lookup-floor-" + "x" * 32),
    SQLALCHEMY_DATABASE_URI=os.environ["DATABASE_URL"].replace(
        "postgresql://", "postgresql+psycopg://", 1
    ),
    RATELIMIT_STORAGE_URI=os.environ["REDIS_URL"],
    BABEL_DEFAULT_LOCALE="zh_CN",
    BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "portal" / "translations"),
)
db = SQLAlchemy(app)
limiter = Limiter(get_remote_address, app=app)
Babel(app)
LIMIT = os.environ.get("RATELIMIT_LOOKUP_IP", "30 per minute;300 per hour")
_size = int(os.environ.get("FLOOR_PAGE_BYTES", "9000"))


FIELDS = (*LOOKUP_FIELDS, "qr_text")  # the form's fields in the order the portal shows them
PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{{ _('Look up an invoice') }}</title></head><body><main>
<section><h1>{{ _('Result for %(key)s', key=key) }}</h1>
<p class="finding finding-{{ finding }}">{{ finding }}</p></section>
<form method="post" action="/lookup">
{% for name in fields %}{% set f = form[name] %}
<div class="field"><label for="{{ f.id }}">{{ f.label.text }}</label>
<a href="/help/fields#{{ name }}">{{ _('Where do I find it?') }}</a>
{{ f(class='input') }}{% if f.description %}<p class="help">{{ f.description }}</p>{% endif %}
</div>{% endfor %}
<button type="submit">{{ _('Look it up') }}</button></form>
</main></body></html>"""
app.jinja_loader = DictLoader({"lookup.html": PAGE})
FIND = text("SELECT issue_date, check_code, registry_id FROM invoices WHERE key = :key")
RECORD = text(
    "INSERT INTO lookup_events (invoice_key, finding, channel, created_at) "
    "VALUES (:key, :finding, 'web', now())"
)


@app.post("/lookup")
@limiter.limit(LIMIT)
def lookup():
    form = LookupForm()
    if not form.validate():
        return "invalid", 422
    key = f"{form.code.data.strip()}-{form.number.data.strip()}"
    row = db.session.execute(FIND, {"key": key}).first()
    matched = (
        row is not None
        and row.issue_date.isoformat() == form.issue_date.data
        and (row.check_code or "")[-6:] == form.check_code_last6.data
    )
    finding = ("registered" if row.registry_id else "pending_registry") if matched else "unknown"
    db.session.execute(RECORD, {"key": key, "finding": finding})
    db.session.commit()
    page = render_template("lookup.html", form=form, fields=FIELDS, key=key, finding=finding)
    return page + "<!--" + "x" * max(0, _size - len(page.encode()) - 7) + "-->"
