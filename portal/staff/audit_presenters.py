"""The audit trail in words a supervisor reads: event names, and each change as
field: before → after with Chinese text shown as text."""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

ACTIONS = {
    "api_token.issued": _l("API token issued"),
    "buyer_link.accepted": _l("Buyer link accepted"),
    "buyer_link.invited": _l("Customer invited to a buyer"),
    "buyer_link.requested": _l("Buyer link requested"),
    "case.already_registered": _l("Case closed: already registered"),
    "case.approval_pending": _l("Approval waiting for a second supervisor"),
    "case.approval_withdrawn": _l("Approval withdrawn"),
    "case.approved": _l("Re-entry approved"),
    "case.assigned": _l("Case assigned"),
    "case.attached": _l("Case attached to an account"),
    "case.claimed": _l("Case claimed"),
    "case.fields_confirmed": _l("Fields confirmed by the customer"),
    "case.identity_corrected": _l("Reported invoice corrected"),
    "case.info_requested": _l("Information requested"),
    "case.merged": _l("Case merged"),
    "case.message": _l("Message"),
    "case.opened": _l("Case opened"),
    "case.priority": _l("Priority changed"),
    "case.rated": _l("Service rated"),
    "case.rejected": _l("Case rejected"),
    "case.released": _l("Case returned to the queue"),
    "case.resolved": _l("Case resolved"),
    "case.withdrawn": _l("Case withdrawn"),
    "invoice.corrected": _l("Invoice corrected"),
    "invoice.issued": _l("Invoice issued"),
    "invoice.reconcile_resubmitted": _l("Invoice resubmitted after reconciliation"),
    "invoice.reentered": _l("Invoice re-entered"),
    "reconcile.finding_opened": _l("Reconciliation finding opened"),
    "reconcile.finding_resolved": _l("Reconciliation finding resolved"),
    "reconcile.run_failed": _l("Reconciliation failed"),
    "reconcile.run_resumed": _l("Reconciliation resumed"),
    "reconcile.run_started": _l("Reconciliation started"),
    "reconcile.run_succeeded": _l("Reconciliation finished"),
    "reconcile.run_taken_over": _l("Reconciliation taken over"),
    "registry.refresh_requested": _l("Registry record asked for again"),
    "submission.dead": _l("Registration given up"),
    "submission.demo_history": _l("Demo history"),
    "submission.in_flight": _l("Sent to the registry"),
    "submission.lease_expired": _l("Sending timed out"),
    "submission.queued": _l("Queued for the registry"),
    "submission.released": _l("Sending released"),
    "submission.retry_scheduled": _l("Registration to be tried again"),
    "submission.succeeded": _l("Registered"),
    "upload.extracted": _l("Evidence read"),
    "upload.purged": _l("Evidence deleted (retention)"),
    "upload.received": _l("Evidence received"),
    "upload.refused": _l("Evidence refused"),
    "user.created": _l("Account created"),
    "user.data_exported": _l("Personal data exported"),
    "user.email_verified": _l("E-mail address confirmed"),
    "user.login": _l("Signed in"),
    "user.logout": _l("Signed out"),
    "user.password_reset": _l("Password reset"),
    "user.password_reset_requested": _l("Password reset requested"),
    "user.preferences": _l("Preferences changed"),
    "user.registered": _l("Registered an account"),
    "user.registration_repeated": _l("Registration repeated"),
    "user.totp_enabled": _l("Two-step sign-in set up"),
    "user.totp_replaced": _l("Two-step sign-in replaced"),
    "user.totp_reset": _l("Two-step sign-in reset"),
    "user.updated": _l("Account changed"),
}

OBJECT_TYPES = {
    "case": _l("Report"),
    "invoice": _l("Invoice"),
    "submission": _l("Submission"),
    "upload": _l("Evidence"),
    "user": _l("Account"),
    "buyer_link": _l("Buyer link"),
    "api_token": _l("API token"),
    "reconciliation_run": _l("Reconciliation"),
    "reconciliation_finding": _l("Reconciliation finding"),
}


def action_label(action: str) -> str:
    """An audit action in words; an unknown one keeps its code after "other"."""
    label = ACTIONS.get(action)
    return str(label) if label is not None else str(_l("Other (%(code)s)", code=action))


def object_label(object_type: str) -> str:
    label = OBJECT_TYPES.get(object_type)
    return str(label) if label is not None else object_type


@dataclass(frozen=True)
class Change:
    name: str
    before: str
    after: str


# Values that are codes, by the key they sit under: shown in staff words.
_CODED = {
    "state": "state",
    "registry_state": "registry",
    "kind": "kind",
    "channel": "channel",
    "reason": "reason",
}
_PRIORITIES = {"urgent": _l("Urgent"), "normal": _l("Normal")}


KEYS = {
    "state": _l("State"),
    "priority": _l("Priority"),
    "assignee": _l("Assignee"),
    "assignee_id": _l("Assignee"),
    "resolution_due_at": _l("Resolution due"),
    "first_response_due_at": _l("First answer due"),
    "reason": _l("Reason"),
    "invoice": _l("Invoice"),
    "registry_id": _l("Registry ID"),
    "registry_state": _l("Registry state"),
    "second_approver": _l("Second approver"),
    "decision": _l("Decision"),
    "fields": _l("Fields"),
    "reasons": _l("Reasons"),
    "reported": _l("Reported invoice"),
    "note": _l("Note"),
    "resolved_at": _l("Resolved at"),
    "attempts": _l("Tries"),
    "requested": _l("Requested"),
    "email": _l("E-mail"),
    "role": _l("Role"),
    "active": _l("Active"),
}


def _text(value, key: str = "", object_type: str = "") -> str:
    from .presenters import staff_word

    if value is None:
        return "—"
    if isinstance(value, str):
        if key == "priority" and value in _PRIORITIES:
            return str(_PRIORITIES[value])
        if key in _CODED and value:
            group = _CODED[key]
            # A submission's state is a delivery state, not a case state.
            if key == "state" and object_type == "submission":
                group = "submission"
            return staff_word(group, value)
        return value or "—"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def changes(before: dict | None, after: dict | None, object_type: str = "") -> list[Change]:
    """Each key of the event's before/after as one readable line (Chinese as text)."""
    from .presenters import FIELDS

    before, after = before or {}, after or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [Change("", _text(before), _text(after))]
    out = []
    for key in list(dict.fromkeys([*before, *after])):
        label = FIELDS.get(key) or KEYS.get(key)
        out.append(
            Change(
                str(label) if label is not None else key,
                _text(before.get(key), key, object_type) if key in before else "",
                _text(after.get(key), key, object_type) if key in after else "",
            )
        )
    return out
