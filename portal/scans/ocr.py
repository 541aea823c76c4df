"""Reading printed text from a picture with RapidOCR (PaddleOCR models on ONNX Runtime).

The models ship inside the ``rapidocr-onnxruntime`` wheel: nothing is downloaded at run time.
Loading them takes a fraction of a second and some memory, so the engine is made once per
process, on first use, and shared.

Public API:

- ``OcrLine(text, confidence, box)``: one line of text, its recognition score and its corners.
- ``ocr_engine()``: the process's engine (created on first call, thread-safe).
- ``OCR_MAX_SIDE``: 1400; ``read_text(image, *, max_side=OCR_MAX_SIDE) -> list[OcrLine]``: the
  lines of text in ``image``, in reading order.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

# Long side the picture is scaled to before OCR (printed invoice text stays legible).
OCR_MAX_SIDE = 1400

_lock = threading.Lock()
_engine: Any = None


@dataclass(frozen=True)
class OcrLine:
    """A line of text OCR found: its text, a score in [0, 1], and its four corners (x, y)."""

    text: str
    confidence: float
    box: tuple[tuple[int, int], ...]


def ocr_engine() -> Any:
    """Return this process's RapidOCR engine, loading the bundled models on the first call."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                from rapidocr_onnxruntime import RapidOCR

                _engine = RapidOCR()
                log.info("loaded the OCR models")
    return _engine


def read_text(image: Image.Image, *, max_side: int = OCR_MAX_SIDE) -> list[OcrLine]:
    """Return the lines of text in ``image`` (top to bottom, left to right); boxes are in
    ``image``'s pixels.

    The picture is first scaled down to ``max_side`` pixels on its long side: detection time
    grows with the area, and printed invoice text stays legible at that size.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale = min(1.0, max_side / max(rgb.size))
    if scale < 1.0:
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    # RapidOCR, like OpenCV, expects BGR channel order.
    pixels = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
    result, _elapsed = ocr_engine()(pixels)
    lines = []
    for box, text, score in result or ():
        corners = tuple((round(float(x) / scale), round(float(y) / scale)) for x, y in box)
        lines.append(OcrLine(text=str(text), confidence=float(score), box=corners))
    return lines
