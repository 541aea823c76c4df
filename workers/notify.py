"""Notification jobs."""

from portal.services import notify

from .context import job_context


def send(notification_id: int) -> str:
    """Send one notification row; running it twice sends it once."""
    with job_context():
        return notify.deliver(notification_id)
