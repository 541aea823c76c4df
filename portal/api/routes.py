"""API views: parse JSON, call a service, answer JSON."""

from __future__ import annotations

from flask import current_app, g, jsonify, request

from ..domain import InvoiceRuleError
from ..extensions import csrf, limiter
from ..models import Invoice, Role
from ..scans.errors import EvidenceRefused
from ..services import evidence, intake, outbox
from ..services import lookup as lookup_service
from . import bp
from .auth import api_error, api_locale, token_key, token_required
from .openapi import openapi_document

csrf.exempt(bp)  # token-authenticated, never cookie-authenticated


def registry_status(status: outbox.DeliveryStatus) -> dict:
    """An invoice's registry status as the API shows it."""
    return {
        "state": status.state,
        "attempts": status.attempts,
        "next_attempt_at": status.next_attempt_at.isoformat() if status.next_attempt_at else None,
        "last_error": status.last_error,
        "registry_id": status.registry_id,
        "registered_at": status.registered_at.isoformat() if status.registered_at else None,
    }


def invoice_status(invoice: Invoice) -> dict:
    """The invoice and its registry status as the API shows it."""
    return {
        "key": invoice.key,
        **{k: v for k, v in invoice.registry_payload().items()},
        "registry": registry_status(outbox.status_for(invoice)),
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
        registry=registry_status(result.delivery) if result.delivery else None,
    )


def evidence_answer(extraction, locale: str) -> dict:
    """What ``evidence:read`` answers: every field with its provenance, the disagreements, the
    checks in the client's language, and whether the file could be read at all."""
    answer = {
        "readable": extraction.readable,
        "kind": extraction.kind.name.lower(),
        "media_type": extraction.media_type,
        "pages": extraction.pages,
        "fields": {
            item.name: {
                "value": item.value,
                "source": item.source.value,
                "where": item.where,
                "confidence": round(item.confidence, 3),
            }
            for item in extraction.fields
        },
        "conflicts": [
            {
                "field": conflict.name,
                "values": [
                    {"value": item.value, "source": item.source.value, "where": item.where}
                    for item in conflict.fields
                ],
            }
            for conflict in extraction.conflicts
        ],
        "checks": [
            {"code": check.code, "ok": check.ok, "message": check.message(locale)}
            for check in extraction.checks
        ],
        "qr": None
        if extraction.qr is None
        else {"text": extraction.qr.text, "ok": extraction.qr.ok, "where": extraction.qr.where},
    }
    if not extraction.readable:
        answer["message"] = next(
            check.message(locale) for check in extraction.checks if check.code == "found"
        )
    return answer


@bp.post("/evidence:read")
@limiter.limit(lambda: current_app.config["RATELIMIT_EVIDENCE_READ"], key_func=token_key)
@token_required()
def read_evidence():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return api_error(400, 'Send the invoice file as the multipart field "file".')
    locale = api_locale()
    # Read one byte past the limit: a larger file is refused without reading all of it.
    data = upload.stream.read(current_app.config["SCAN_MAX_BYTES"] + 1)
    try:
        extraction = evidence.read_evidence(upload.filename, data)
    except EvidenceRefused as refusal:
        return api_error(
            422,
            "The file was refused.",
            refusal={"code": refusal.code, "message": refusal.message(locale)},
        )
    return jsonify(evidence_answer(extraction, locale))


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
