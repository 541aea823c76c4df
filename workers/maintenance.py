"""Periodic housekeeping jobs: the outbox and evidence sweeper."""

from portal.services import evidence, notify, outbox

from .context import job_context


def sweep() -> dict:
    """Take back expired leases, dispatch due deliveries that have no live job, and re-enqueue
    evidence whose extraction job went missing."""
    with job_context():
        report = outbox.sweep()
        uploads = evidence.sweep()
        mails = notify.sweep()
    return {
        "leases_reclaimed": report.leases_reclaimed,
        "dispatched": report.dispatched,
        "breaker": report.breaker,
        "uploads_requeued": uploads,
        "notifications_requeued": mails,
    }
