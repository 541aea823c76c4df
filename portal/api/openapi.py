"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from ..domain.fields import WIRE_FIELDS

# A 数电票 has no code and no check code; a legacy invoice's kind follows from its code.
_OPTIONAL_IN = ("code", "kind", "check_code")
_MONEY = {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$", "examples": ["100.00"]}

INVOICE_IN = {
    "type": "object",
    "required": [n for n in WIRE_FIELDS if n not in _OPTIONAL_IN],
    "properties": {
        "code": {
            "type": "string",
            "description": "10 or 12 digits; empty for 数电票",
            "examples": ["011001900111"],
        },
        "number": {
            "type": "string",
            "description": "8 digits, or 20 for 数电票",
            "examples": ["51142414"],
        },
        "kind": {
            "type": "string",
            "description": "invoice kind or type code (optional; derived from the code)",
            "examples": ["e_ordinary", "10"],
        },
        "issue_date": {"type": "string", "format": "date"},
        "amount": _MONEY | {"description": "amount excluding tax"},
        "tax": _MONEY,
        "total": _MONEY | {"description": "amount + tax"},
        "buyer_tax_id": {"type": "string", "description": "统一社会信用代码 (18) or legacy 15"},
        "buyer_name": {"type": "string", "maxLength": 200},
        "seller_tax_id": {"type": "string"},
        "check_code": {"type": "string", "description": "20 digits, 普票 kinds only"},
    },
    "additionalProperties": True,
}

INVOICE_OUT = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        **{name: {"type": "string"} for name in WIRE_FIELDS},
        "registry": {
            "type": "object",
            "properties": {
                "state": {
                    "type": "string",
                    "enum": ["pending", "registered", "failed", "conflict"],
                },
                "attempts": {"type": "integer"},
                "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
                "last_error": {"type": ["string", "null"]},
                "registry_id": {"type": ["string", "null"]},
                "registered_at": {"type": ["string", "null"], "format": "date-time"},
            },
        },
    },
}

LOOKUP_IN = {
    "type": "object",
    "required": ["number"],
    "properties": {
        "code": {"type": "string"},
        "number": {"type": "string"},
        "issue_date": {"type": "string", "format": "date"},
        "amount": _MONEY,
        "total": _MONEY,
        "check_code_last6": {"type": "string", "pattern": r"^\d{6}$"},
    },
}

LOOKUP_OUT = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "params": {"type": "object"},
                    "message": {"type": "string"},
                },
            },
        },
        "checks_left_today": {"type": "integer"},
        "registry": {"type": ["object", "null"]},
    },
}

_SOURCE = {
    "type": "string",
    "enum": ["qr", "xml", "text", "ocr"],
    "description": "qr: the invoice's QR code; xml: data the invoicing system wrote (数电票 XML, "
    "an OFD's attached invoice XML or CustomDatas); text: a PDF or OFD text layer, by position; "
    "ocr: recognised from a picture",
}
_WHERE = {
    "type": "string",
    "description": "the part read: pdf-text, pdf-image, pdf-page, ofd-attachment, "
    "ofd-customdata, ofd-page, ofd-image, ofd-xml, xml, ocr, or the pass that found the QR code "
    "(downscaled, display, full)",
}

EVIDENCE_READ = {
    "type": "object",
    "required": ["readable", "kind", "media_type", "fields", "conflicts", "checks", "qr"],
    "properties": {
        "readable": {
            "type": "boolean",
            "description": "false: nothing identifies the invoice; ask the person to type the "
            "fields (`message` says so)",
        },
        "message": {"type": "string"},
        "kind": {"type": "string", "enum": ["jpeg", "png", "webp", "heic", "pdf", "ofd", "xml"]},
        "media_type": {"type": "string"},
        "pages": {"type": "integer"},
        "fields": {
            "type": "object",
            "description": "by field name (code, number, kind, issue_date, amount, tax, total, "
            "check_code, buyer_tax_id, buyer_name, seller_tax_id, seller_name); a field not "
            "read is absent (an individual buyer has no buyer_tax_id)",
            "additionalProperties": {
                "type": "object",
                "required": ["value", "source", "where", "confidence"],
                "properties": {
                    "value": {"type": "string"},
                    "source": _SOURCE,
                    "where": _WHERE,
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
        },
        "conflicts": {
            "type": "array",
            "description": "fields the sources disagree on: every value read, the chosen first",
            "items": {
                "type": "object",
                "required": ["field", "values"],
                "properties": {
                    "field": {"type": "string"},
                    "values": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "value": {"type": "string"},
                                "source": _SOURCE,
                                "where": _WHERE,
                            },
                        },
                    },
                },
            },
        },
        "checks": {
            "type": "array",
            "description": "codes: found, identity, beijing, qr, totals (amount + tax = total), "
            "buyer_tax_id, sources_agree",
            "items": {
                "type": "object",
                "required": ["code", "ok", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "ok": {"type": "boolean"},
                    "message": {"type": "string"},
                },
            },
        },
        "qr": {
            "type": ["object", "null"],
            "properties": {
                "text": {"type": "string"},
                "ok": {"type": "boolean"},
                "where": {"type": "string"},
            },
        },
    },
}

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "title"],
            "properties": {
                "status": {"type": "integer"},
                "title": {"type": "string"},
                "errors": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
                "differences": {"type": "array", "items": {"type": "string"}},
                "refusal": {
                    "type": "object",
                    "description": "why a file was refused (evidence:read): empty, too_large, "
                    "unsupported_type, extension_mismatch, active_content, corrupt, "
                    "too_many_pixels, xml_entities, encrypted, archive_too_large, not_ofd",
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        }
    },
}


def _json(schema_ref: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": schema_ref}}},
    }


def openapi_document() -> dict:
    """The API description, built from the same field list the intake uses."""
    error = "#/components/schemas/Error"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Invoice Re-entry Portal API (发票补录服务平台)",
            "version": "1.0.0",
            "description": "Machine clients: the billing system pushes issued invoices; apps "
            "look invoices up and read invoice files into fields. Authenticate with "
            "`Authorization: Bearer <token>` (`flask users token`; RFC 6750: the scheme in any "
            "case, exactly one token, anything else is a 401). Messages follow "
            "Accept-Language (zh_CN, en).",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "InvoiceIn": INVOICE_IN,
                "Invoice": INVOICE_OUT,
                "Error": ERROR,
                "LookupIn": LOOKUP_IN,
                "LookupOut": LOOKUP_OUT,
                "EvidenceRead": EVIDENCE_READ,
            },
        },
        "paths": {
            "/invoices": {
                "post": {
                    "summary": "Record an issued invoice (idempotent on its key)",
                    "operationId": "createInvoice",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/InvoiceIn"}
                            }
                        },
                    },
                    "responses": {
                        "201": _json(
                            "#/components/schemas/Invoice", "Recorded; queued for the registry"
                        ),
                        "200": _json(
                            "#/components/schemas/Invoice", "Already recorded with the same fields"
                        ),
                        "400": _json(error, "The body is not a JSON object"),
                        "401": _json(error, "No valid token"),
                        "403": _json(error, "The token's user may not record invoices"),
                        "409": _json(error, "The key exists with different fields"),
                        "422": _json(error, "Invalid fields, each with a code and a message"),
                        "429": _json(error, "Too many requests"),
                    },
                }
            },
            "/invoices/{key}": {
                "get": {
                    "summary": "An invoice and its registry status",
                    "operationId": "getInvoice",
                    "parameters": [
                        {
                            "name": "key",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": "`{code}-{number}`, or the 20-digit number",
                        }
                    ],
                    "responses": {
                        "200": _json("#/components/schemas/Invoice", "The invoice"),
                        "401": _json(error, "No valid token"),
                        "403": _json(error, "The token's user may not read the ledger"),
                        "404": _json(error, "No such invoice"),
                    },
                }
            },
            "/lookup": {
                "post": {
                    "summary": "Why is an invoice (not) in the registry? Findings with codes",
                    "operationId": "lookup",
                    "description": "Give the identity and the fields verification needs for its "
                    "kind (专票: issue_date + amount; 数电票: issue_date + total; 普票: issue_date "
                    "+ check_code_last6). Finding codes: not_beijing, unknown, issued_today, "
                    "amount_is_total, date_mismatch, check_code_mismatch, amount_mismatch, "
                    "registered, pending_registry, registration_failed (every retry failed; "
                    "params name the staff task and reply_by). Each caller (token) may make 5 "
                    "checks of one "
                    "invoice a day that do not match; then it gets only 429 for that invoice "
                    "until tomorrow. A full match is never refused for others' failures.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/LookupIn"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json("#/components/schemas/LookupOut", "The findings"),
                        "400": _json(error, "The body is not a JSON object"),
                        "401": _json(error, "No valid token"),
                        "422": _json(error, "A field is not valid"),
                        "429": _json(error, "Too many lookups"),
                    },
                }
            },
            "/evidence:read": {
                "post": {
                    "summary": "Read an invoice file into fields, each with its source",
                    "operationId": "readEvidence",
                    "description": "A photo (JPEG, PNG, WebP, HEIC), PDF, OFD or 数电票 XML as "
                    "the multipart field `file`, read as an upload is (same limits and refusals) "
                    "and not stored. QR fields win over printed text; values that disagree are "
                    "listed in `conflicts` and flagged by the `sources_agree` check, a total that "
                    "is not amount + tax by `totals`. A file nothing could be read from answers "
                    "`readable: false` with a message asking for the fields to be typed.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json("#/components/schemas/EvidenceRead", "What was read"),
                        "400": _json(error, "No file in the multipart field `file`"),
                        "401": _json(error, "No valid token"),
                        "413": _json(error, "The request is larger than the upload limit"),
                        "422": _json(error, "The file was refused (`refusal` says why)"),
                        "429": _json(error, "Too many reads"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
    }
