"""API views: parse JSON, call a service, answer JSON."""

from __future__ import annotations

from flask import current_app, g, jsonify, request

from ..domain import InvoiceRuleError
from ..extensions import csrf, limiter
from ..models import Invoice, Role
from ..services import intake, outbox
from ..services import lookup as lookup_service
from . import bp
from .auth import api_error, api_locale, token_key, token_required
from .openapi import openapi_document

csrf.exempt(bp)  # token-authenticated, never cookie-authenticated


def invoice_status(invoice: Invoice) -> dict:
    """The invoice and its registry status as the API shows it."""
    status = outbox.status_for(invoice)
    return {
        "key": invoice.key,
        **{k: v for k, v in invoice.registry_payload().items()},
        "registry": {
            "state": status.state,
            "attempts": status.attempts,
            "next_attempt_at": status.next_attempt_at.isoformat()
            if status.next_attempt_at
            else None,
            "last_error": status.last_error,
            "registry_id": status.registry_id,
            "registered_at": status.registered_at.isoformat() if status.registered_at else None,
        },
    }


@bp.post("/invoices")
@limiter.limit("600 per minute", key_func=token_key)
@token_required(Role.REVIEWER)
def create_invoice():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api_error(400, "The body must be a JSON object.")
    try:
        issued = intake.validate_issued(body, locale=api_locale())
    except intake.IntakeErrors as error:
        return api_error(
            422,
            "The invoice is not valid.",
            errors={f: {"code": code, "message": msg} for f, (code, msg) in error.errors.items()},
        )
    result = intake.record_issued(issued, actor=g.api_user)
    if result.outcome is intake.IntakeOutcome.CONFLICT:
        return api_error(
            409,
            "An invoice with this key exists with different fields.",
            differences=list(result.differences),
            existing=invoice_status(result.invoice),
        )
    status = 201 if result.outcome is intake.IntakeOutcome.CREATED else 200
    return jsonify(invoice_status(result.invoice)), status


@bp.get("/invoices/<key>", merge_slashes=False)  # "//x" is a 404, not a 308 redirect
@token_required(Role.REVIEWER)
def get_invoice(key: str):
    invoice = intake.invoice_by_key(key)
    if invoice is None:
        return api_error(404, "No invoice with this key.")
    return jsonify(invoice_status(invoice))


@bp.post("/lookup")
@limiter.limit(lambda: current_app.config["RATELIMIT_LOOKUP_USER"], key_func=token_key)
@token_required()
def lookup():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api_error(400, "The body must be a JSON object.")
    locale = api_locale()
    try:
        query = lookup_service.parse(body)
        result = lookup_service.lookup(
            query, user=g.api_user, channel="api", source=request.remote_addr
        )
    except InvoiceRuleError as error:
        return api_error(
            422,
            "The lookup is not valid.",
            errors={
                error.field or "number": {"code": error.code, "message": error.message(locale)}
            },
        )
    except lookup_service.LookupLimited as error:
        return api_error(429, str(error.message))
    return jsonify(
        key=query.identity.key,
        findings=[f.as_dict(locale) for f in result.findings],
        checks_left_today=result.checks_left_today,
        registry=invoice_status(result.invoice)["registry"] if result.invoice else None,
    )


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
