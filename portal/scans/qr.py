"""Finding the invoice's QR code in a picture, cheaply first.

zxing-cpp needs a few milliseconds on a downscaled picture and most of a second on a full
12-megapixel one, so the scan goes from small to large and stops at the first invoice QR code.
Other codes on the page (a payment code, a shop's WeChat) are skipped: the invoice's is the one
``portal.domain.parse_qr`` accepts.

Public API:

- ``QrReading``: ``text``, ``payload`` (a ``QrPayload``) or ``error`` (an ``InvoiceRuleError``),
  ``where`` (which pass found it) and ``box`` (in the coordinates of the picture passed in).
- ``read_qr_texts(image) -> list[tuple[str, box]]``: every QR code in one picture.
- ``find_invoice_qr(image, *, full_resolution=None) -> QrReading | None``.
- ``reading_from_text(text, where) -> QrReading``: a QR code's text known without a picture
  (an OFD's embedded invoice XML carries it as ``GraphCode``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import zxingcpp
from PIL import Image

from portal.domain import InvoiceRuleError, QrPayload, parse_qr

Box = tuple[int, int, int, int]
# Below this long side a picture is scanned as it is; above it, first at half size.
_DOWNSCALE_ABOVE = 1400
# A QR code text longer than this is not an invoice's (they are under 120 characters).
_MAX_QR_TEXT = 512


@dataclass(frozen=True)
class QrReading:
    """A QR code found in the evidence: the invoice's (``payload``) or the best candidate that
    looked like one but broke a rule (``error`` says which).

    ``where`` is ``downscaled``, ``display``, ``full``, or a reader's own place (``pdf-image``,
    ``pdf-page``, ``ofd-image``); ``box`` is (left, top, right, bottom) in pixels of the
    picture given to ``find_invoice_qr`` (None when unknown).
    """

    text: str
    payload: QrPayload | None
    error: InvoiceRuleError | None
    where: str
    box: Box | None = None

    @property
    def ok(self) -> bool:
        """True when the QR code is a valid invoice QR code."""
        return self.payload is not None


def read_qr_texts(image: Image.Image) -> list[tuple[str, Box]]:
    """Return the text and bounding box of every QR code zxing-cpp finds in ``image``."""
    gray = image if image.mode == "L" else image.convert("L")
    found = []
    for barcode in zxingcpp.read_barcodes(
        gray, formats=zxingcpp.BarcodeFormat.QRCode, try_rotate=False, try_invert=False
    ):
        position = barcode.position
        corners = (
            position.top_left,
            position.top_right,
            position.bottom_right,
            position.bottom_left,
        )
        xs, ys = [point.x for point in corners], [point.y for point in corners]
        found.append((barcode.text[:_MAX_QR_TEXT], (min(xs), min(ys), max(xs), max(ys))))
    return found


def find_invoice_qr(
    image: Image.Image,
    *,
    downscaled: Image.Image | None = None,
    full_resolution: Callable[[], Image.Image] | None = None,
    where: str | None = None,
) -> QrReading | None:
    """Find the invoice QR code in ``image``: at half size first (when large), then as given,
    then in ``full_resolution()`` (called only if both failed: decoding a photo again at full
    size is the slow path, for small codes).

    ``downscaled`` is ``image`` at half size when the caller already has it (``normalise``
    makes one for the thumbnail). ``where`` names a single pass instead (``pdf-image`` ...):
    the image is scanned as given. Returns the first valid invoice QR code, else the first code
    that starts like one (``01,``) with its rule error, else None. Boxes are in ``image``'s
    coordinates.
    """
    gray = _LazyGray(image)
    if where is not None:
        passes: list[tuple[str, Callable[[], Image.Image]]] = [(where, gray)]
    else:
        passes = []
        if downscaled is not None:
            passes.append(("downscaled", _LazyGray(downscaled)))
        elif max(image.size) > _DOWNSCALE_ABOVE:
            passes.append(("downscaled", lambda: gray().reduce(2)))
        passes.append(("display", gray))
        if full_resolution is not None:
            passes.append(("full", full_resolution))
    candidate: QrReading | None = None
    for name, picture in passes:
        scanned = picture()
        factor = image.width / scanned.width
        for text, box in read_qr_texts(scanned):
            scaled = (
                round(box[0] * factor),
                round(box[1] * factor),
                round(box[2] * factor),
                round(box[3] * factor),
            )
            reading = _reading(text, name, scaled)
            if reading.ok:
                return reading
            if candidate is None and text.startswith("01,"):
                candidate = reading
    return candidate


class _LazyGray:
    """The grayscale copy zxing reads, made once and only if a pass needs it."""

    def __init__(self, image: Image.Image) -> None:
        self._image = image
        self._gray: Image.Image | None = None

    def __call__(self) -> Image.Image:
        if self._gray is None:
            self._gray = self._image if self._image.mode == "L" else self._image.convert("L")
        return self._gray


def _reading(text: str, where: str, box: Box | None) -> QrReading:
    try:
        payload = parse_qr(text)
    except InvoiceRuleError as error:
        return QrReading(text=text, payload=None, error=error, where=where, box=box)
    return QrReading(text=text, payload=payload, error=None, where=where, box=box)


def reading_from_text(text: str, where: str) -> QrReading:
    """The QrReading of a QR code text that came without a picture."""
    return _reading(text[:_MAX_QR_TEXT], where, None)
