"""A reference for bench/lookup.py: the least a page holding a CSRF-protected form costs when
Flask makes it for each request.

Flask's signed-cookie session and Flask-WTF's token, as they come, put into a page of fixed text
of the size of the portal's lookup page (``FORM_PAGE_BYTES``): no templates, no database, no
other extension, no hooks. A new visitor's request signs a token and a session cookie. The
portal's signed-out lookup page carries no token (``portal/web/forms.py``) and is kept whole
(``portal/web/pages.py``), so this floor does not bind it.
"""

import os

from flask import Flask
from flask_wtf.csrf import CSRFProtect, generate_csrf

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("SECRET_KEY", "bench-form-app-" + "x" * 32),
    SESSION_COOKIE_SECURE=True,
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SAMESITE="Lax",
)
CSRFProtect(app)
_size = int(os.environ.get("FORM_PAGE_BYTES", "6000"))
_head = '<!doctype html><form method="post"><input type="hidden" name="csrf_token" value="'
_tail = '"><button>Look it up</button></form>'
_filler = "<p>" + "x" * max(0, _size - len(_head) - len(_tail) - 100) + "</p>"


@app.route("/lookup")
def form_page():
    return _head + generate_csrf() + _tail + _filler
