"""Evidence extraction jobs."""

from portal.services import evidence

from .context import job_context


def extract_upload(upload_id: int) -> str:
    """Read one uploaded file (image, PDF, OFD, XML) into invoice fields; safe to run twice."""
    with job_context():
        return evidence.process(upload_id)
