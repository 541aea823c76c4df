"""The view side of adding evidence, shared by the customer's and staff's case pages.

Public API:

- ``add_evidence_file(case, storage_file)``: hand one file to the evidence service and flash
  what became of it.
- ``finish(url)``: where an upload form goes next: a redirect, or for the page's progress-bar
  upload (``X-Requested-With: XMLHttpRequest``) a JSON ``{"redirect": url}``, so the flashed
  messages are shown by the page the browser loads, not spent on the request's own redirect.
- ``register(app)``: ``upload_limits()`` for templates (the limits the browser checks before
  sending, the same the server enforces) and the answer to a body over ``MAX_CONTENT_LENGTH``:
  the refusal flashed on the page the customer came from, never a bare 413 page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, flash, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from ..scans.errors import EvidenceRefused
from ..scans.limits import megabytes
from ..scans.sniff import safe_filename
from ..services import evidence
from ..services.errors import ServiceError
from .i18n import current_language
from .urls import is_local_path

# The page each upload form lives on: where a refused upload is explained.
_FORM_PAGES = {
    "customer.case_evidence": lambda args: url_for("customer.case_detail", **args) + "#evidence",
    "customer.lookup_scan": lambda args: url_for("customer.lookup") + "#scan",
    "customer.new_case": lambda args: url_for("customer.new_case"),
}


def add_evidence_file(case, storage_file) -> bool:
    """Hand one uploaded file to the evidence service and say what became of it; True if it
    was accepted."""
    name = safe_filename(storage_file.filename)
    try:
        evidence.add_upload(case, current_user, storage_file.filename, storage_file.read())
    except EvidenceRefused as refusal:
        flash(f"{name}: {refusal.message(current_language())}", "error")
    except ServiceError as error:
        flash(f"{name}: {error.message}", "error")
    else:
        flash(_("%(name)s received; we are reading it.", name=name), "success")
        return True
    return False


def _wants_json_answer() -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


def finish(url: str, status: int = 200):
    """Redirect to ``url`` (303), or tell the page's upload script to go there."""
    if _wants_json_answer():
        return jsonify(redirect=url), status
    return redirect(url, 303)


def upload_limits() -> dict[str, object]:
    """What the browser checks before sending a file: the server's own limits."""
    max_bytes = evidence.limits().max_bytes
    language = current_language()
    return {
        "max_bytes": max_bytes,
        "too_large": EvidenceRefused("too_large", limit_mb=megabytes(max_bytes)).message(language),
        "together_too_large": _(
            "Together these files are larger than %(mb)s MB; please upload them one at a time.",
            mb=megabytes(max_bytes),
        ),
        "unsupported": EvidenceRefused("unsupported_type").message(language),
        "renamed": _(
            "The file name does not match what the file contains. Please upload the original "
            "file, without renaming it."
        ),
        "empty": EvidenceRefused("empty").message(language),
    }


def _back_to_form() -> str | None:
    page = _FORM_PAGES.get(request.endpoint or "")
    if page is not None:
        return page(request.view_args or {})
    referrer = urlsplit(request.referrer or "")
    back = referrer.path + (f"?{referrer.query}" if referrer.query else "")
    # Same host, and a path that stays on it ("//evil.example/x" would leave).
    return back if referrer.netloc == request.host and is_local_path(back) else None


def register(app: Flask) -> None:
    app.add_template_global(upload_limits)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        # Raised while the body is parsed (CSRF check or the view's first look at the form),
        # before any view code: the refusal goes back to the form the file came from.
        from .errors import render_error

        limit = megabytes(evidence.limits().max_bytes)
        message = EvidenceRefused("too_large", limit_mb=limit).message(current_language())
        back = _back_to_form()
        if back is None or request.path.startswith("/api/"):
            return render_error(413, message)
        flash(message, "error")
        return finish(back, 413)
