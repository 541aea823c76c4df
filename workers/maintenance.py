"""Periodic housekeeping jobs: the outbox sweeper."""

from portal.services import outbox

from .context import job_context


def sweep() -> dict:
    """Take back expired leases and dispatch due deliveries that have no live job."""
    with job_context():
        report = outbox.sweep()
    return {
        "leases_reclaimed": report.leases_reclaimed,
        "dispatched": report.dispatched,
        "breaker": report.breaker,
    }
