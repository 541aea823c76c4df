"""What each document reader (PDF, OFD, 数电票 XML) hands back to ``extract``.

Public API:

- ``DocumentReading``: ``source`` (``pdf``, ``ofd``, ``xml``), ``fields`` read exactly from the
  document, the invoice ``qr`` code if one was found, the first page rendered as a picture
  (``page_image``, PDF only), the number of ``pages``, and ``text_lines`` (the text layer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from portal.scans.qr import QrReading
from portal.scans.textfields import TextField


@dataclass(frozen=True)
class DocumentReading:
    """What a reader found in one electronic invoice file."""

    source: str
    fields: dict[str, TextField]
    qr: QrReading | None = None
    page_image: Image.Image | None = None
    pages: int = 1
    text_lines: tuple[str, ...] = field(default=(), repr=False)
