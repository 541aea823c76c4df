"""Periodic housekeeping jobs: the sweeper and the monitors."""

from portal.services import evidence, monitoring, notify, outbox

from .context import job_context


def sweep() -> dict:
    """Take back expired leases, dispatch due deliveries that have no live job, and re-enqueue
    evidence and mail whose jobs went missing."""
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


def monitor() -> dict:
    """Raise or clear sync alerts, and warn about cases close to or past their SLA."""
    with job_context():
        results = monitoring.run_checks()
        warned, escalated = monitoring.warn_sla()
    return {
        "unhealthy": [r.kind for r in results if not r.healthy],
        "sla_warned": warned,
        "sla_escalated": escalated,
    }
