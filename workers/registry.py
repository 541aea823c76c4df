"""Registry delivery jobs."""

from portal.services import delivery

from .context import job_context


def deliver(submission_ids: list[int]) -> dict:
    """Deliver these outbox rows to the registry (one request); safe to run twice."""
    with job_context():
        report = delivery.deliver_batch(submission_ids)
    return {
        "claimed": report.claimed,
        "succeeded": report.succeeded,
        "retrying": report.retrying,
        "dead": report.dead,
        "skipped": report.skipped_reason,
    }
