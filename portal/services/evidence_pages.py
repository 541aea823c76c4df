"""Further pages of a PDF upload for the review page's viewer (the preview is page 1 only)."""

from __future__ import annotations

import io

from ..models import Upload
from ..scans.errors import EvidenceRefused
from ..scans.pdf import render_page
from .evidence import limits, storage

PAGE_WIDTH = 1400  # pixels: enough to read a printed invoice at the viewer's size


def page_png(upload: Upload, number: int) -> bytes | None:
    """Page ``number`` (1-based) of a PDF upload as PNG bytes, scaled to ``PAGE_WIDTH``;
    None when it has no such page, is not a PDF, or was purged. Rendered by PDFium without
    scripts, under the same pixel limits as extraction."""
    if (
        upload.media_type != "application/pdf"
        or not 1 <= number <= (upload.pages or 1)
        or upload.is_purged
    ):
        return None
    try:
        with storage().open(upload.storage_key) as stream:
            data = stream.read()
        image = render_page(data, limits(), index=number - 1)
    except (FileNotFoundError, EvidenceRefused):
        return None
    if image.width > PAGE_WIDTH:
        image = image.resize((PAGE_WIDTH, round(image.height * PAGE_WIDTH / image.width)))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue()


def upload_by_id(upload_id: int) -> Upload | None:
    """An upload attached to a case (staff see all), or None."""
    from ..extensions import db

    upload = db.session.get(Upload, upload_id)
    return upload if upload is not None and upload.case_id is not None else None
