"""Refreshing the registry's record of one invoice for the review page (a reviewer asked)."""

from portal.services import registry_view

from .context import job_context


def refresh(key: str) -> dict:
    """Fetch and store the registry's record of ``key``; the review page shows it. A registry
    that cannot answer is a stored outcome (the page says so), not a job failure."""
    with job_context():
        view = registry_view.refresh(key)
        return {"key": key, "known": view.known, "source": view.source, "error": view.error}
