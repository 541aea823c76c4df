"""What staff pages show, in staff words: labels for states, events, alerts and errors, and the
review page's field comparison (typed · read · confirmed · ledger · registry).

Staff read a case differently from its customer ("waiting for the customer", not "waiting for
your information"), so staff templates take their words from here, never from
``customer/presenters.py``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal

from flask import current_app
from flask_babel import lazy_gettext as _l

from ..domain import InvoiceKind
from ..domain.fields import DISPLAY_ORDER, NOT_ON_DIGITAL
from ..models import Case
from ..services import intake
from ..services.review import extracted_fields
from ..web.labels import FIELD_LABELS
from . import bp

CASE_STATES = {
    "awaiting_evidence": _l("Waiting for evidence from the customer"),
    "awaiting_review": _l("Waiting for a reviewer"),
    "in_review": _l("Being reviewed"),
    "info_requested": _l("Waiting for the customer"),
    "approved": _l("Approved, being registered"),
    "resolved": _l("Resolved"),
    "rejected": _l("Rejected"),
    "withdrawn": _l("Withdrawn by the customer"),
    "merged": _l("Merged into another report"),
}

EVENTS = {
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
    "info_added": _l("The customer added information"),
    "withdrawn": _l("The customer withdrew the report"),
    "evidence_added": _l("A file was added"),
    "fields_confirmed": _l("The customer confirmed the fields"),
    "priority": _l("Priority changed"),
}

CHANNELS = {
    "web": _l("Online"),
    "counter": _l("Counter"),
    "phone": _l("Phone"),
    "email": _l("E-mail"),
    "reconciliation": _l("Reconciliation"),
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
    "breaker_open": _l("The registry cannot be reached"),
    "dead_letter": _l("An invoice could not be registered automatically"),
    "dead_letters": _l("Invoices wait for staff: automatic registration gave up"),
    "stuck_submissions": _l("Registrations are stuck"),
    "failure_rate": _l("Many registrations fail"),
    "backlog": _l("The registration backlog is growing"),
    "worker_heartbeat": _l("No background worker is running"),
    "holiday_calendar": _l(
        "A year's official holiday arrangement is not loaded: its deadlines are estimated"
    ),
}

UPLOAD_STATES = {
    "received": _l("Received"),
    "processing": _l("Being read"),
    "extracted": _l("Read"),
    "failed": _l("Could not be used"),
    "purged": _l("Deleted under the retention policy"),
}

# Why an approval waits for a second supervisor (the codes ``review.approve`` records).
FOUR_EYES_REASONS = {
    "amount": _l("the total is above the four-eyes amount"),
    "identity": _l("the approved invoice is not the one reported"),
    "ledger_change": _l("it changes an invoice already in the ledger"),
    "registered_change": _l("it changes an invoice already registered"),
}


SLA = {"breached": _l("Overdue"), "at_risk": _l("Due soon"), "on_time": _l("On time")}

# An invoice's standing at the registry, as the ledger knows it.
REGISTRY_STATES = {
    "pending": _l("Not registered yet"),
    "registered": _l("Registered"),
    "failed": _l("Registration failed"),
    "conflict": _l("The registry holds different fields"),
}

# One delivery (submission) of an invoice to the registry.
SUBMISSION_STATES = {
    "queued": _l("Waiting to be sent"),
    "retry_scheduled": _l("Will be tried again"),
    "in_flight": _l("Being sent"),
    "succeeded": _l("Accepted by the registry"),
    "dead": _l("Automatic tries given up"),
}

# Why a delivery failed (``Submission.last_error_kind``), as a reviewer would say it.
ERROR_KINDS = {
    "timeout": _l("The registry did not answer in time"),
    "connection": _l("The registry could not be reached"),
    "unavailable": _l("The registry was unavailable"),
    "server_error": _l("The registry had an internal error"),
    "transient": _l("A temporary registry fault"),
    "rate_limited": _l("The registry asked us to slow down"),
    "invalid": _l("The registry refused the fields as invalid"),
    "conflict": _l("The registry holds this invoice with different fields"),
    "exhausted": _l("Every automatic try failed"),
    "breaker_open": _l("The registry link was paused after repeated failures"),
    "bad_response": _l("The registry sent an answer we could not read"),
    "rejected": _l("The registry rejected the invoice"),
    "http_4xx": _l("The registry refused the request"),
}

# Why a submission was made.
REASONS = {
    "issued": _l("issued"),
    "reentry": _l("re-entered after review"),
    "correction": _l("correction after review"),
    "retry": _l("submitted again by staff"),
    "reconcile": _l("missing at the registry (reconciliation)"),
}

# One try's outcome.
OUTCOMES = {
    "success": _l("Accepted by the registry"),
    "transient": _l("No answer; tried again later"),
    "permanent": _l("Refused by the registry"),
}

RUN_KINDS = {"full": _l("full"), "incremental": _l("since the last run")}
RUN_STATES = {"running": _l("running"), "succeeded": _l("finished"), "failed": _l("failed")}
FINDINGS = {
    "missing": _l("Missing at the registry"),
    "mismatch": _l("The registry holds different fields"),
    "unknown": _l("At the registry, unknown to our ledger"),
}

FIELDS = FIELD_LABELS  # the invoice's fields (portal/web/labels.py)

GROUPS = {
    "state": CASE_STATES,
    "event": EVENTS,
    "channel": CHANNELS,
    "cause": CAUSES,
    "alert": ALERTS,
    "upload": UPLOAD_STATES,
    "sla": SLA,
    "registry": REGISTRY_STATES,
    "submission": SUBMISSION_STATES,
    "error": ERROR_KINDS,
    "field": FIELDS,
    "reason": REASONS,
    "outcome": OUTCOMES,
    "run_kind": RUN_KINDS,
    "run_state": RUN_STATES,
    "finding": FINDINGS,
    "role": {
        "customer": _l("Customer"),
        "reviewer": _l("Reviewer"),
        "supervisor": _l("Supervisor"),
        "admin": _l("Administrator"),
    },
}


def staff_word(group: str, code: str | None) -> str:
    """``code`` of ``group`` in staff words; an unknown code reads as "other", never raw."""
    if code is None or code == "":
        return "—"
    if group == "kind":
        from ..web.i18n import current_language

        try:
            return InvoiceKind(code).label(current_language())
        except ValueError:
            return str(_l("Other (%(code)s)", code=code))
    if group == "error" and code.startswith("http_"):
        code = "unavailable" if code.startswith("http_5") else "http_4xx"
    label = GROUPS[group].get(code)
    return str(label) if label is not None else str(_l("Other (%(code)s)", code=code))


def kind_choices() -> list[tuple[str, str]]:
    """The invoice kinds for the approval form, by their Chinese (or English) names."""
    from ..web.i18n import current_language

    language = current_language()
    return [("", str(_l("From the invoice code (legacy invoices)")))] + [
        (k.value, k.label(language)) for k in InvoiceKind if k != InvoiceKind.DIGITAL
    ]


# ------------------------------------------------------------------- the review page's table


@dataclass(frozen=True)
class ComparisonRow:
    """One field as typed, as read from the evidence, as confirmed, in the ledger, at the
    registry; ``differs`` when the known values disagree."""

    field: str
    typed: str
    extracted: str
    extracted_source: str
    confirmed: str
    ledger: str
    registry: str

    @property
    def differs(self) -> bool:
        values = {
            v for v in (self.typed, self.extracted, self.confirmed, self.ledger, self.registry) if v
        }
        if self.field == "check_code" and any(len(v) == 6 for v in values):
            # Customers type the last 6 digits; those agree with a full code ending in them.
            values = {v[-6:] for v in values}
        return len(values) > 1

    def column_differs(self, column: str) -> bool:
        """Whether this column's value is one of the disagreeing ones (to highlight it)."""
        value = getattr(self, column)
        if not value or not self.differs:
            return False
        others = [
            getattr(self, c)
            for c in ("typed", "extracted", "confirmed", "ledger", "registry")
            if c != column and getattr(self, c)
        ]
        if self.field == "check_code":
            return any(o[-6:] != value[-6:] for o in others)
        return any(o != value for o in others)


def _norm(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    text = str(value).strip()
    try:
        return f"{Decimal(text):.2f}" if "." in text else text
    except ArithmeticError:
        return text


def is_digital(case: Case) -> bool:
    """Whether the reported invoice is a 数电票 (no code, a 20-digit number)."""
    return not case.claimed_code and len(case.claimed_number or "") == 20


def comparison(case: Case, registry: dict | None) -> list[ComparisonRow]:
    """Every field side by side, for the review page. ``registry`` is the stored registry
    record (``services.registry_view``), never a live call."""
    typed = {
        "code": case.claimed_code,
        "number": case.claimed_number,
        "issue_date": case.claimed_issue_date,
        "amount": case.claimed_amount,
        "total": case.claimed_total,
        "check_code": case.claimed_check_code,
        "buyer_tax_id": case.claimed_buyer_tax_id,
    }
    invoice = intake.invoice_by_key(case.claimed_key) if case.claimed_key else None
    extracted = extracted_fields(case)
    confirmed = case.confirmed_fields or {}
    reg = registry or {}
    skip = NOT_ON_DIGITAL if is_digital(case) else ()
    rows = []
    for name in DISPLAY_ORDER:
        if name in skip:
            continue
        value, source = extracted.get(name, ("", ""))
        rows.append(
            ComparisonRow(
                field=name,
                typed=_norm(typed.get(name)),
                extracted=_norm(value),
                extracted_source=source,
                confirmed=_norm(confirmed.get(name)),
                ledger=_norm(getattr(invoice, name, None)) if invoice else "",
                registry=_norm(reg.get(name)),
            )
        )
    return rows


def prefill_fields(case: Case) -> dict[str, str]:
    """What the approval form starts with: confirmed, else read, else typed, else ledger; the
    tax from total − amount when only those are known; our own seller ID."""
    rows = comparison(case, None)
    values = {r.field: r.confirmed or r.extracted or r.typed or r.ledger for r in rows}
    values.setdefault("code", "")
    values.setdefault("check_code", "")
    values["seller_tax_id"] = values.get("seller_tax_id") or current_app.config["SELLER_TAX_ID"]
    if not values.get("tax") and values.get("amount") and values.get("total"):
        with contextlib.suppress(ArithmeticError):
            values["tax"] = f"{Decimal(values['total']) - Decimal(values['amount']):.2f}"
    kind = values.get("kind", "")
    values["kind"] = kind if kind in {k.value for k in InvoiceKind} else ""
    if not values["kind"] and is_digital(case):
        values["kind"] = InvoiceKind.DIGITAL_ORDINARY.value
    return values


def approval_fields(case: Case) -> list[str]:
    """The approval form's fields for this case, in order (a 数电票 is not asked for a code
    or a check code)."""
    skip = NOT_ON_DIGITAL if is_digital(case) else ()
    return [name for name in DISPLAY_ORDER if name not in skip]


@dataclass(frozen=True)
class TrendRows:
    cases: list
    lookup_rows: list
    registry_hour_rows: list
    registry_day_rows: list


def trend_rows(t) -> TrendRows:
    """The dashboard's trends as table rows (shares as percentages, "—" where nothing ran)."""

    def registry(rows):
        return [
            (
                period,
                n,
                f"{share:.0%}" if share is not None else "—",
                latency if latency is not None else "—",
            )
            for period, n, share, latency in rows
        ]

    causes = ("registered", "registry_failure", "keying_error", "unknown")
    return TrendRows(
        cases=t.cases,
        lookup_rows=[(day, total, *(by.get(c, 0) for c in causes)) for day, total, by in t.lookups],
        registry_hour_rows=registry(t.registry_hours),
        registry_day_rows=registry(t.registry_days),
    )


@bp.app_context_processor
def staff_presenters() -> dict:
    return {"staff_word": staff_word}
