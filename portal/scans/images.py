"""Photos and scans made safe and small: decoded within bounds, turned upright, stripped of every
piece of metadata (GPS position, camera, comments, anything a polyglot hides), re-encoded.

Only the re-encoded picture is ever shown; the uploaded bytes are not. A phone photo is decoded
at reduced scale straight from the JPEG's DCT coefficients (``Image.draft``), which is why
normalising a 12-megapixel photo costs less than merely decoding it at full size.

Public API:

- ``MAX_IMAGE_PIXELS``: Pillow's decompression-bomb limit, set explicitly on import.
- ``EncodedImage(data, media_type, width, height)``.
- ``NormalisedImage``: the upright ``image`` at display size (and at ``half`` that), its
  ``display`` and ``thumbnail`` encodings, ``perceptual_hash``, ``original_size``, ``scale``;
  ``full_resolution()``.
- ``normalise(data, kind=None, limits=ScanLimits()) -> NormalisedImage``.
- ``encode_image(image, image_format) -> EncodedImage``: re-encode without metadata.
- ``make_thumbnail(image, side) -> tuple[EncodedImage, str]``: a JPEG thumbnail and the
  perceptual hash of the picture.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pillow_heif
from PIL import Image

from portal.scans.background import Background
from portal.scans.errors import EvidenceRefused
from portal.scans.fingerprints import perceptual_hash
from portal.scans.limits import ScanLimits
from portal.scans.sniff import HEAD_BYTES, FileKind, detect_kind

log = logging.getLogger(__name__)

# Pillow warns above this many pixels and refuses above twice as many. We set it explicitly (it
# is a process-wide setting) to our own default, and refuse above ScanLimits.max_pixels before
# decoding anything.
MAX_IMAGE_PIXELS = ScanLimits().max_pixels
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
pillow_heif.register_heif_opener()

JPEG_QUALITY = 85
# Display pictures longer than this also get a half-size copy.
HALF_ABOVE = 1400
THUMBNAIL_QUALITY = 80
# EXIF orientation -> the transpose that makes the picture upright.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION_TAG = 0x0112
# Photos stay JPEG; lossless sources (screenshots, scans saved as PNG) stay PNG.
_DISPLAY_FORMAT = {
    FileKind.JPEG: "JPEG",
    FileKind.HEIC: "JPEG",
    FileKind.WEBP: "JPEG",
    FileKind.PNG: "PNG",
}


@dataclass(frozen=True)
class EncodedImage:
    """A picture re-encoded by us: no metadata, nothing but pixels."""

    data: bytes
    media_type: str
    width: int
    height: int


class NormalisedImage:
    """An uploaded picture, upright and clean.

    ``image`` is the decoded picture at display size (RGB or L), for reading QR codes and text;
    ``half`` the same at half size when that is still large (a fast first QR pass), else None;
    ``display`` its re-encoding, the only form in which the picture is ever served; ``scale`` is
    display width / original width (after orientation).
    """

    def __init__(
        self,
        *,
        image: Image.Image,
        half: Image.Image | None,
        display: Background[EncodedImage],
        thumbnail: EncodedImage,
        perceptual_hash: str,
        original_size: tuple[int, int],
        kind: FileKind,
        source: bytes,
    ) -> None:
        self.image = image
        self.half = half
        self.thumbnail = thumbnail
        self.perceptual_hash = perceptual_hash
        self.original_size = original_size
        self.scale = image.width / original_size[0]
        self.kind = kind
        self._display = display
        self._source = source

    @property
    def display(self) -> EncodedImage:
        """The re-encoded picture (encoded on another thread while QR codes are read)."""
        return self._display.result()

    def full_resolution(self) -> Image.Image:
        """Decode the original again at full size, upright (slow: only when display size fails)."""
        if self.scale >= 1:
            return self.image
        image, orientation = _decode(self._source, self.kind, target=None)
        return _upright(_flatten(image), orientation)


def normalise(
    data: bytes, kind: FileKind | None = None, limits: ScanLimits | None = None
) -> NormalisedImage:
    """Decode an uploaded picture within ``limits``, turn it upright, re-encode it cleanly.

    The result is at most ``limits.display_max_side`` pixels on its long side, with a thumbnail
    and a perceptual hash. Refuses with ``empty``, ``unsupported_type``, ``too_many_pixels``
    (checked from the header, before decoding) or ``corrupt`` (truncated or malformed data).
    """
    limits = limits or ScanLimits()
    if not data:
        raise EvidenceRefused("empty")
    kind = kind or detect_kind(data[:HEAD_BYTES])
    if kind is None or not kind.is_image:
        raise EvidenceRefused("unsupported_type")
    header = _open(data, kind)
    width, height = header.size
    if width * height > limits.max_pixels:
        raise EvidenceRefused("too_many_pixels", pixels=width * height, limit=limits.max_pixels)
    image, orientation = _decode(
        data, kind, target=_draft_target(width, height, limits.display_max_side), opened=header
    )
    image = _flatten(image)
    if max(image.size) > limits.display_max_side:
        image.thumbnail(
            (limits.display_max_side, limits.display_max_side),
            Image.Resampling.LANCZOS,
            reducing_gap=3.0,
        )
    image = _upright(image, orientation)
    # Our own decoded copy: drop what the file said about itself before anything is encoded.
    image.info = {}
    original = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    # JPEG encoding releases the GIL: it runs beside the thumbnail and the caller's QR pass.
    display = Background(encode_image, image, _DISPLAY_FORMAT[kind])
    # Every other pixel, not a filtered reduction (5× faster): it only feeds the first QR pass
    # and the thumbnail, and both average again anyway.
    half = (
        image.resize((image.width // 2, image.height // 2), Image.Resampling.NEAREST)
        if max(image.size) > HALF_ABOVE
        else None
    )
    thumbnail, fingerprint = make_thumbnail(half or image, limits.thumbnail_side)
    return NormalisedImage(
        image=image,
        half=half,
        display=display,
        thumbnail=thumbnail,
        perceptual_hash=fingerprint,
        original_size=original,
        kind=kind,
        source=data,
    )


def encode_image(image: Image.Image, image_format: str = "JPEG") -> EncodedImage:
    """Encode ``image`` as JPEG or PNG carrying no metadata at all (no EXIF, ICC, text)."""
    clean = _flatten(image)
    if clean.info:
        # Pillow writes some of ``info`` back when saving (a JPEG comment, which is where a
        # JPEG/HTML polyglot keeps its HTML; an ICC profile; PNG text). Never the caller's copy.
        clean = clean.copy()
        clean.info = {}
    buffer = io.BytesIO()
    if image_format == "PNG":
        clean.save(buffer, "PNG", compress_level=6)
        media_type = "image/png"
    else:
        clean.save(buffer, "JPEG", quality=JPEG_QUALITY)
        media_type = "image/jpeg"
    return EncodedImage(buffer.getvalue(), media_type, clean.width, clean.height)


def make_thumbnail(image: Image.Image, side: int) -> tuple[EncodedImage, str]:
    """Return a JPEG thumbnail at most ``side`` pixels on its long side (without metadata) and
    the perceptual hash of the picture, computed from the same small copy.
    """
    scale = min(1.0, side / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # resize() with a reducing gap first box-reduces by an integer factor: a few milliseconds.
    small = _flatten(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=1.5)
    small.info = {}  # a new image, ours to change
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    encoded = EncodedImage(buffer.getvalue(), "image/jpeg", small.width, small.height)
    return encoded, perceptual_hash(small)


def _open(data: bytes, kind: FileKind) -> Image.Image:
    """Read the header only; restrict Pillow to the sniffed format (never EPS, never guessing)."""
    try:
        return Image.open(io.BytesIO(data), formats=[kind.pillow_format])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise EvidenceRefused(
            "too_many_pixels", pixels=_pixels_in(error), limit=MAX_IMAGE_PIXELS
        ) from error
    except Exception as error:  # Pillow raises many types for malformed headers.
        log.info("refused a %s whose header does not parse: %r", kind.label, error)
        raise EvidenceRefused("corrupt") from error


def _decode(
    data: bytes,
    kind: FileKind,
    *,
    target: tuple[int, int] | None,
    opened: Image.Image | None = None,
) -> tuple[Image.Image, int]:
    """Decode the first frame, at reduced scale for JPEG when ``target`` allows; return it with
    its EXIF orientation (1 when absent or unreadable).
    """
    image = opened if opened is not None else _open(data, kind)
    orientation = _orientation(image)
    try:
        if kind is FileKind.JPEG and target is not None:
            # libjpeg scales by 1/2, 1/4 or 1/8 while decoding, never below ``target``.
            image.draft("RGB" if image.mode != "L" else "L", target)
        # The whole file is in memory: hand it to the decoder in one piece, not in 64 KB
        # blocks after each of which libjpeg suspends and re-reads part of a row.
        image.decodermaxblock = max(image.decodermaxblock, len(data))
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise EvidenceRefused(
            "too_many_pixels", pixels=_pixels_in(error), limit=MAX_IMAGE_PIXELS
        ) from error
    except Exception as error:  # truncated data, broken chunks, text bombs, decoder errors
        log.info("refused a %s that does not decode: %r", kind.label, error)
        raise EvidenceRefused("corrupt") from error
    return image, orientation


def _draft_target(width: int, height: int, max_side: int) -> tuple[int, int] | None:
    """The size to ask libjpeg for: the original divided by the largest power of two (up to 8)
    that keeps the long side at three quarters of ``max_side`` or more. A resample from there
    to ``max_side`` (when still larger) is cheap; decoding at full size is not.
    """
    long_side = max(width, height)
    factor = 1
    while factor < 8 and long_side / (factor * 2) >= max_side * 0.75:
        factor *= 2
    # Floor division: libjpeg then rounds up, so the result is never below this size.
    return (width // factor, height // factor) if factor > 1 else None


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a malformed EXIF block only costs us the orientation
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION else 1


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = _ORIENTATION.get(orientation)
    return image.transpose(method) if method is not None else image


def _flatten(image: Image.Image) -> Image.Image:
    """RGB (or L) pixels only: transparency composed onto white, palettes and CMYK converted."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if image.mode == "1":
        return image.convert("L")
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    if image.mode in ("I", "F"):
        # 16-bit and float grayscale: stretch to 8 bits rather than clip.
        low, high = image.getextrema()
        factor = 255 / ((high - low) or 1)
        return image.point(lambda value: value * factor - low * factor).convert("L")
    return image.convert("RGB")


def _pixels_in(error: Exception) -> int | str:
    # Pillow's message reads "Image size (1600000000 pixels) exceeds limit of ..."
    text = str(error)
    start = text.find("(")
    end = text.find(" pixels", start)
    number = text[start + 1 : end] if start != -1 and end != -1 else ""
    return int(number) if number.isdigit() else "?"
