"""Putting a refusal from the rules or a service beside the form field it is about."""

from __future__ import annotations

from ..domain import InvoiceRuleError
from ..services.errors import ServiceError
from .i18n import current_language


def attach_error(form, error: InvoiceRuleError | ServiceError, fallback: str) -> None:
    """Add ``error``'s message to the field it names, or to ``fallback`` if the form lacks it."""
    if isinstance(error, InvoiceRuleError):
        message = error.message(current_language())
    else:
        message = error.message
    field = form[error.field] if error.field and error.field in form else form[fallback]
    field.errors = [*field.errors, message]


def attach_errors(form, errors, fallback: str) -> None:
    """Attach each of ``errors`` like ``attach_error``, skipping a field that already shows an
    error (a missing number is said once, not by the form and again by the rules)."""
    for error in errors:
        name = error.field if error.field and error.field in form else fallback
        if not form[name].errors:
            attach_error(form, error, fallback)
