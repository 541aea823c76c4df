"""The view side of adding evidence, shared by the customer's and staff's case pages."""

from __future__ import annotations

from flask import flash
from flask_babel import gettext as _
from flask_login import current_user

from ..scans.errors import EvidenceRefused
from ..scans.sniff import safe_filename
from ..services import evidence
from ..services.errors import ServiceError
from .i18n import current_language


def add_evidence_file(case, storage_file) -> None:
    """Hand one uploaded file to the evidence service and say what became of it."""
    name = safe_filename(storage_file.filename)
    try:
        evidence.add_upload(case, current_user, storage_file.filename, storage_file.read())
    except EvidenceRefused as refusal:
        flash(f"{name}: {refusal.message(current_language())}", "error")
    except ServiceError as error:
        flash(f"{name}: {error.message}", "error")
    else:
        flash(_("%(name)s received; we are reading it.", name=name), "success")
