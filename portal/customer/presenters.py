"""Small helpers templates use to present lookups and cases."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..web.labels import FIELD_LABELS
from . import bp

TIMELINE_LABELS = {
    "issued": _l("Issued"),
    "queued": _l("Queued for the registry"),
    ("attempt", "success"): _l("Sent to the registry: accepted"),
    ("attempt", "transient"): _l("Sent to the registry: no answer yet, will retry"),
    ("attempt", "permanent"): _l("Sent to the registry: refused, staff are checking"),
    "registered": _l("Registered"),
}

CASE_STATES = {
    "awaiting_evidence": _l("Waiting for evidence"),
    "awaiting_review": _l("Waiting for review"),
    "in_review": _l("Being reviewed"),
    "info_requested": _l("Waiting for your information"),
    "approved": _l("Approved, being registered"),
    "resolved": _l("Resolved"),
    "rejected": _l("Rejected"),
    "withdrawn": _l("Withdrawn"),
}

# Where staff read a state differently from the customer ("your information" is theirs).
STAFF_CASE_STATES = {
    "info_requested": _l("Waiting for the customer"),
    "merged": _l("Merged"),
}

EVENT_LABELS = {
    "opened": _l("Report received"),
    "claimed": _l("Claimed by a reviewer"),
    "released": _l("Returned to the queue"),
    "assigned": _l("Assigned"),
    "approval_pending": _l("Approved; waiting for a second approval"),
    "approval_withdrawn": _l("Approval withdrawn before the second approval"),
    "approved": _l("Approved; the invoice is being registered"),
    "registered": _l("Registered with the registry"),
    "rejected": _l("Rejected"),
    "info_requested": _l("More information requested"),
    "merged": _l("Merged with another report"),
    "merged_in": _l("Another report was merged into this one"),
    "already_registered": _l("The invoice was already registered"),
    "message": _l("Message"),
    "info_added": _l("You added information"),
    "withdrawn": _l("You withdrew the report"),
    "evidence_added": _l("A file was added"),
    "fields_confirmed": _l("Fields confirmed"),
}

UPLOAD_STATES = {
    "received": _l("Received"),
    "processing": _l("Reading"),
    "extracted": _l("Read"),
    "failed": _l("Could not be used"),
    "purged": _l("Deleted under the retention policy"),
}

CHANNELS = {
    "web": _l("Online"),
    "counter": _l("Counter"),
    "phone": _l("Phone"),
    "email": _l("E-mail"),
    "system": _l("Automatic (registration failed)"),
}

CAUSES = {
    "registry_failure": _l("Registration delayed"),
    "keying_error": _l("A field typed differently"),
    "not_beijing": _l("Not a Beijing invoice"),
    "issued_today": _l("Issued today"),
    "unknown": _l("Unknown to us"),
    "registered": _l("Already registered"),
}

ALERTS = {
    "breaker_open": _l("Registry unreachable"),
    "dead_letter": _l("Dead letter"),
    "dead_letters": _l("Dead letters waiting"),
    "stuck_submissions": _l("Deliveries stuck"),
    "failure_rate": _l("Many registry failures"),
    "backlog": _l("Backlog growing"),
    "worker_heartbeat": _l("No worker running"),
    "holiday_calendar": _l("Holiday arrangement not loaded"),
}

SLA_STATES = {
    "breached": _l("Overdue"),
    "at_risk": _l("Due soon"),
    "on_time": _l("On time"),
}


REGISTRY_STATES = {
    "pending": _l("Pending"),
    "registered": _l("Registered"),
    "failed": _l("Failed"),
    "conflict": _l("Conflict"),
}


def query_fields(query) -> dict[str, str]:
    """A parsed lookup as the form's field values."""
    return {
        "code": query.identity.code,
        "number": query.identity.number,
        "issue_date": query.issue_date.isoformat() if query.issue_date else "",
        "amount": f"{query.amount:.2f}" if query.amount is not None else "",
        "total": f"{query.total:.2f}" if query.total is not None else "",
        "check_code_last6": query.check_code_last6 or "",
    }


def corrected_lookup(result, finding) -> dict[str, str]:
    """The lookup with the typed amount moved to the field it really is, the other left blank
    for the customer to read off the invoice."""
    fields = query_fields(result.query)
    asked, entered = finding.params.get("field"), finding.params.get("entered")
    if asked in ("amount", "total") and entered in ("amount", "total"):
        fields[entered], fields[asked] = fields[asked], ""
    return {k: v for k, v in fields.items() if v}


def report_link_fields(result) -> dict[str, str]:
    """What the "report this invoice" button carries into the report form."""
    return {k: v for k, v in query_fields(result.query).items() if v}


def report_prefill(args) -> dict[str, object]:
    """The report form's values from the lookup's fields (the "report this invoice" link):
    the lookup's last six check-code digits go in the check-code field, a date that does not
    parse is left for the customer to pick."""
    from ..domain import InvoiceRuleError, parse_issue_date

    prefill: dict[str, object] = {
        name: args.get(name, "") for name in ("code", "number", "amount", "total")
    }
    prefill["check_code"] = args.get("check_code_last6", "")
    try:
        prefill["issue_date"] = parse_issue_date(args.get("issue_date", ""))
    except InvoiceRuleError:
        prefill["issue_date"] = None
    return prefill


def refusal_message(upload) -> str:
    """Why a file could not be used, in the page's language."""
    from ..scans.errors import REFUSAL_MESSAGES, EvidenceRefused
    from ..web.i18n import current_language

    details = upload.extracted or {}
    code = details.get("refused") or upload.error
    if code not in REFUSAL_MESSAGES:
        return str(_l("The file could not be read."))
    try:
        return EvidenceRefused(code, **details.get("params", {})).message(current_language())
    except (KeyError, IndexError, ValueError):
        return str(_l("The file could not be read."))


def timeline_label(entry) -> str:
    label = TIMELINE_LABELS.get((entry.kind, entry.outcome)) or TIMELINE_LABELS.get(entry.kind)
    return str(label or entry.kind)


@bp.app_context_processor
def presenters() -> dict:
    return {
        "corrected_lookup": corrected_lookup,
        "report_link_fields": report_link_fields,
        "timeline_label": timeline_label,
        "case_state_label": lambda state: str(CASE_STATES.get(state, state)),
        "staff_state_label": lambda state: str(
            STAFF_CASE_STATES.get(state) or CASE_STATES.get(state, state)
        ),
        "event_label": lambda kind: str(EVENT_LABELS.get(kind, kind)),
        "registry_state_label": lambda state: str(REGISTRY_STATES.get(state, state)),
        "channel_label": lambda channel: str(CHANNELS.get(channel, channel)),
        "upload_state_label": lambda state: str(UPLOAD_STATES.get(state, state)),
        "refusal_message": refusal_message,
        "sla_label": lambda status: str(SLA_STATES.get(status, status)),
        "field_label": lambda name: str(FIELD_LABELS.get(name, name)),
        "alert_label": lambda kind: str(ALERTS.get(kind, kind)),
    }
