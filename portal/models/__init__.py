"""SQLAlchemy models, one module per aggregate; import them from here."""

from .audit import AuditEvent
from .buyer import BuyerLink, LinkState
from .case import (
    OPEN_CASE_STATES,
    Case,
    CaseEvent,
    CaseState,
    Channel,
    DecisionKind,
    ReferenceCounter,
    ReviewDecision,
    Upload,
    UploadState,
)
from .invoice import (
    Invoice,
    InvoiceSource,
    RegistryState,
    Submission,
    SubmissionAttempt,
    SubmissionState,
)
from .lookup import LookupEvent
from .monitoring import Alert
from .notification import Notification, Rating
from .reconciliation import (
    FindingKind,
    ReconciliationFinding,
    ReconciliationRun,
    ReconciliationStaging,
    RunKind,
    RunState,
)
from .registry_view import RegistrySnapshot
from .types import UTCDateTime, utcnow
from .user import STAFF_ROLES, ApiToken, Role, User, hash_api_token, new_session_token

__all__ = [
    "OPEN_CASE_STATES",
    "STAFF_ROLES",
    "Alert",
    "ApiToken",
    "AuditEvent",
    "BuyerLink",
    "Case",
    "CaseEvent",
    "CaseState",
    "Channel",
    "DecisionKind",
    "FindingKind",
    "Invoice",
    "InvoiceSource",
    "LinkState",
    "LookupEvent",
    "Notification",
    "Rating",
    "ReconciliationFinding",
    "ReconciliationRun",
    "ReconciliationStaging",
    "ReferenceCounter",
    "RegistrySnapshot",
    "RegistryState",
    "ReviewDecision",
    "Role",
    "RunKind",
    "RunState",
    "Submission",
    "SubmissionAttempt",
    "SubmissionState",
    "UTCDateTime",
    "Upload",
    "UploadState",
    "User",
    "hash_api_token",
    "new_session_token",
    "utcnow",
]
