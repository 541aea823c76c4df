"""What each document reader (PDF, OFD, 数电票 XML) hands back to ``extract``.

Public API:

- ``Candidate(name, field, source, where)``: one value a reader found for a field, with where it
  came from: ``source`` is ``xml`` (a structured part the invoicing system wrote: a 数电票 XML,
  an OFD's embedded invoice XML or its CustomDatas), ``text`` (a PDF text layer, an OFD page
  and its template) or ``ocr``; ``where`` names the part (``pdf-text``, ``ofd-attachment``,
  ``ofd-customdata``, ``ofd-page``, ``xml``).
- ``DocumentReading``: ``source`` (the kind of file: ``pdf``, ``ofd``, ``xml``), the
  ``candidates`` in the order the reader trusts them, the invoice ``qr`` code if one was found,
  the first page rendered as a picture (``page_image``, PDF only), the number of ``pages``, and
  ``text_lines`` (the text as read, for logs and tests); ``fields`` is the first candidate of
  each field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from portal.scans.qr import QrReading
from portal.scans.textfields import TextField


@dataclass(frozen=True)
class Candidate:
    """One value a reader found for a field, and where it found it."""

    name: str
    field: TextField
    source: str
    where: str


@dataclass(frozen=True)
class DocumentReading:
    """What a reader found in one electronic invoice file."""

    source: str
    candidates: tuple[Candidate, ...] = ()
    qr: QrReading | None = None
    page_image: Image.Image | None = None
    pages: int = 1
    text_lines: tuple[str, ...] = field(default=(), repr=False)

    @property
    def fields(self) -> dict[str, TextField]:
        """The first (most trusted) value of each field the reader found."""
        best: dict[str, TextField] = {}
        for candidate in self.candidates:
            best.setdefault(candidate.name, candidate.field)
        return best


def candidates(fields: dict[str, TextField], source: str, where: str) -> list[Candidate]:
    """Wrap one reader part's fields as candidates from ``source`` / ``where``."""
    return [Candidate(name, value, source, where) for name, value in fields.items()]
