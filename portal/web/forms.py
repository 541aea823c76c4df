"""The portal's base form and its CSRF tokens: Flask-WTF's, made without repeated work.

The scheme is Flask-WTF's own, and Flask-WTF still checks every token (``CSRFProtect`` on each
POST, ``validate_csrf``): a random value kept in the session, and the page's token is that
value signed by itsdangerous with the salt ``wtf-csrf-token``. Only the making differs.
Flask-WTF builds a new serializer for each token, derives its key again and tries to
zlib-compress the 40-character value (setting up a compressor can cost more than the rest
of the signature). Here one serializer per secret key signs every token, with the derived key kept
(``KeyCachingSigner``) and no compression attempt for short payloads (``CompactSerializer``).

Every portal form is a ``PortalForm`` and every template's ``csrf_token()`` is
``generate_csrf`` (``PortalCSRF`` in ``portal/extensions.py``), so one request's forms share one
token, whichever makes it first. A ``PortalForm`` also renders its inputs with ``html_params``
below: WTForms' output, made without markupsafe's pure-Python formatter.
"""

from __future__ import annotations

import copy
import hashlib
import os
import weakref

from flask import Flask, current_app, g, session
from flask_wtf import FlaskForm
from flask_wtf.csrf import _FlaskFormCSRF
from markupsafe import Markup, escape
from wtforms import widgets
from wtforms.widgets.core import clean_key

from .sessions import CompactSerializer

SALT = "wtf-csrf-token"  # Flask-WTF's, so that its validate_csrf accepts our tokens

_serializers: dict[str | bytes, CompactSerializer] = {}


def csrf_settings(app: Flask) -> tuple[str | bytes, str]:
    """The secret key that signs ``app``'s tokens and the session entry holding the raw value,
    by Flask-WTF's settings and defaults."""
    config = app.config
    secret_key = config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
    if not secret_key:
        raise RuntimeError("A secret key is required to use CSRF.")
    return secret_key, config.get("WTF_CSRF_FIELD_NAME") or "csrf_token"


def new_raw_token() -> str:
    """A new session's raw token, made as Flask-WTF makes it."""
    return hashlib.sha1(os.urandom(64)).hexdigest()  # noqa: S324 - random bytes, not a password


def sign_token(secret_key: str | bytes, raw: str) -> str:
    """The token a page carries for the raw value ``raw``."""
    serializer = _serializers.get(secret_key)
    if serializer is None:
        serializer = _serializers.setdefault(secret_key, CompactSerializer(secret_key, salt=SALT))
    return serializer.dumps(raw)


def generate_csrf(secret_key: str | bytes | None = None, token_key: str | None = None) -> str:
    """This request's CSRF token, as ``flask_wtf.csrf.generate_csrf`` makes it (same
    arguments, same defaults, same ``g`` and session entries)."""
    default_key, default_field = csrf_settings(current_app)
    secret_key, field_name = secret_key or default_key, token_key or default_field
    token = g.get(field_name)
    if token is None:
        raw = session.get(field_name)
        if not isinstance(raw, str):
            raw = session[field_name] = new_raw_token()
        token = sign_token(secret_key, raw)
        setattr(g, field_name, token)
    return token


class _PortalFormCSRF(_FlaskFormCSRF):
    """Flask-WTF's form CSRF (its checks untouched), with the token from ``generate_csrf``."""

    def generate_csrf_token(self, csrf_token_field) -> str:
        return generate_csrf(self.meta.csrf_secret, self.meta.csrf_field_name)


def html_params(**kwargs) -> Markup:
    """``wtforms.widgets.html_params``, the same output made without ``Markup.format``.

    WTForms formats each attribute through markupsafe's formatter, in pure Python; the
    attributes of a lookup result page's fields took half of its rendering.
    """
    params = []
    for key, value in sorted(kwargs.items()):
        if value is False:
            continue
        key = escape(clean_key(key))
        if value is True:
            params.append(key)
        else:
            # A Markup value is left as it is by escape(): its quotes still need escaping.
            value = str(escape(value)).replace('"', "&quot;")
            params.append(f'{key}="{value}"')
    return Markup(" ".join(params))  # noqa: S704 - every key and value is escaped above


_quick: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _with_quick_attributes(widget):
    """``widget``, or for the widgets that build their attributes with their own
    ``html_params`` (``<input>`` and ``<button>``), a copy of it that uses ours. Widgets live as
    long as their field classes, so each is copied once."""
    if getattr(type(widget), "html_params", None) is not widgets.html_params:
        return widget
    quick = _quick.get(widget)
    if quick is None:
        quick = copy.copy(widget)
        quick.html_params = html_params  # called unbound, as the class's staticmethod is
        _quick[widget] = quick
    return quick


class PortalForm(FlaskForm):
    """The base of every portal form: a ``FlaskForm`` whose token comes from ``generate_csrf``
    and whose inputs are rendered with the quicker ``html_params``."""

    class Meta:
        csrf_class = _PortalFormCSRF

        def render_field(self, field, render_kw):
            field.widget = _with_quick_attributes(field.widget)
            return super().render_field(field, render_kw)
