"""Reading printed text from a picture with RapidOCR (PaddleOCR models on ONNX Runtime).

The models ship inside the ``rapidocr-onnxruntime`` wheel: nothing is downloaded at run time.
Loading them takes a fraction of a second and some memory, so the engine is made once per
process, on first use, and shared.

An invoice page is read the way a person would: text is *detected* on the whole page (cheap),
the page is turned upright from what was detected (a quarter turn when most text runs up or
down, a half turn when the direction classifier says the lines are upside down, a tilt of a few
degrees from the slope of the lines), and only the text that can hold a field is *recognised*
(the costly part): every short run in full, long runs first by their opening characters, and in
full only when those open a field (a label such as 名称 or 纳税人识别号, digits, a name beside its
label); the 密码区 cipher, addresses, bank accounts and remarks are never recognised past their
first characters.

Public API:

- ``OcrLine(text, confidence, box)``: one line of text, its recognition score and its corners.
- ``ocr_engine()``: the process's engine (created on first call, thread-safe).
- ``OCR_MAX_SIDE``: 1400; ``read_text(image, *, max_side=OCR_MAX_SIDE) -> list[OcrLine]``: every
  line of text in ``image`` as the engine reads it, in reading order (no turning, no selection).
- ``read_invoice_words(image, *, max_side=OCR_MAX_SIDE) -> list[Word]``: the invoice's text,
  upright, with boxes in the upright page's pixels, for ``portal.scans.layout``.

Detection goes through the engine's call with ``use_rec=False``; direction and recognition use
the engine's ``text_cls`` and ``text_rec`` stages on lists of crops, so that each runs batched.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from portal.scans.layout import Word

log = logging.getLogger(__name__)

# Long side the picture is scaled to before OCR (printed invoice text stays legible).
OCR_MAX_SIDE = 1400
# A run longer than this many heights is first recognised by its opening characters only.
_LONG_RUN = 9.0
_PREFIX = 7.0
# Boxes the direction classifier looks at to tell an upside-down page.
_DIRECTION_SAMPLE = 8
# Below this tilt (degrees) the page is taken as level.
_MIN_TILT = 0.3
# A long run is read in full when its opening characters open a field.
_FIELD_OPENING = re.compile(
    r"发票|开票|校验|名称|称[:：]|纳税|识别号|统一|信用代码|合计|小写|价税|No|№|[购销]"
)
_CIPHER = re.compile(r"[<>*/+]")

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

                # Short runs (labels, amounts) are padded to the recogniser's minimum width:
                # 160 pixels instead of the default 320 halves the work on them.
                _engine = RapidOCR(rec_img_shape=[3, 48, 160])
                log.info("loaded the OCR models")
    return _engine


def read_text(image: Image.Image, *, max_side: int = OCR_MAX_SIDE) -> list[OcrLine]:
    """Return the lines of text in ``image`` (top to bottom, left to right); boxes are in
    ``image``'s pixels.

    The picture is first scaled down to ``max_side`` pixels on its long side: detection time
    grows with the area, and printed invoice text stays legible at that size.
    """
    pixels, scale = _bgr(image, max_side)
    result, _elapsed = ocr_engine()(pixels)
    lines = []
    for box, text, score in result or ():
        corners = tuple((round(float(x) / scale), round(float(y) / scale)) for x, y in box)
        lines.append(OcrLine(text=str(text), confidence=float(score), box=corners))
    return lines


def read_invoice_words(image: Image.Image, *, max_side: int = OCR_MAX_SIDE) -> list[Word]:
    """Return the invoice's text as words of the upright page (see the module docstring)."""
    pixels, _scale = _bgr(image, max_side)
    engine = ocr_engine()
    detected, _elapsed = engine(pixels, use_det=True, use_cls=False, use_rec=False)
    quads = [np.asarray(quad, dtype=np.float32) for quad in detected or ()]
    if not quads:
        return []
    height, width = pixels.shape[:2]
    turn = 90 if _mostly_vertical(quads) else 0
    if _upside_down(engine, pixels, quads, turn):
        turn = (turn + 180) % 360
    upright = [_turn_points(quad, turn, width, height) for quad in quads]
    size = (height, width) if turn in (90, 270) else (width, height)
    upright = _level(upright, size)
    runs = [_Run(quad, box) for quad, box in zip(quads, upright, strict=True)]
    return _recognise(engine, pixels, runs, turn)


@dataclass
class _Run:
    """One detected run of text: its corners in the picture and in the upright page."""

    quad: np.ndarray
    upright: np.ndarray

    @property
    def box(self) -> tuple[float, float, float, float]:
        xs, ys = self.upright[:, 0], self.upright[:, 1]
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())

    @property
    def height(self) -> float:
        return max(self.box[3] - self.box[1], 1.0)

    @property
    def width(self) -> float:
        return max(self.box[2] - self.box[0], 1.0)


def _bgr(image: Image.Image, max_side: int) -> tuple[np.ndarray, float]:
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale = min(1.0, max_side / max(rgb.size))
    if scale < 1.0:
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    # RapidOCR, like OpenCV, expects BGR channel order.
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1]), scale


def _sides(quad: np.ndarray) -> tuple[float, float]:
    """Length of the quad's first edge and of its second (width and height as detected)."""
    return float(np.linalg.norm(quad[1] - quad[0])), float(np.linalg.norm(quad[3] - quad[0]))


def _mostly_vertical(quads: list[np.ndarray]) -> bool:
    """True when most elongated runs run up or down: the page lies on its side."""
    tall = wide = 0
    for quad in quads:
        across, down = _sides(quad)
        if down > 2.5 * across:
            tall += 1
        elif across > 2.5 * down:
            wide += 1
    return tall > wide


def _crop(pixels: np.ndarray, quad: np.ndarray, turn: int) -> np.ndarray:
    """The run cut out along its own edges (tilt undone) and turned upright."""
    across, down = _sides(quad)
    width, height = max(1, round(across)), max(1, round(down))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    crop = cv2.warpPerspective(
        pixels, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    if turn:
        crop = np.rot90(crop, k=-turn // 90)
    if crop.shape[0] >= 1.5 * crop.shape[1]:
        # A vertical label (购买方信息) printed one character under the other: read it as a line.
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def _upside_down(engine: Any, pixels: np.ndarray, quads: list[np.ndarray], turn: int) -> bool:
    """Ask the direction classifier about the longest runs: most of them upside down?"""
    longest = sorted(quads, key=lambda q: -max(_sides(q)))[:_DIRECTION_SAMPLE]
    _crops, results, _elapsed = engine.text_cls([_crop(pixels, quad, turn) for quad in longest])
    votes = sum(1 if str(label) == "180" and float(score) > 0.5 else -1 for label, score in results)
    return votes > 0


def _turn_points(quad: np.ndarray, turn: int, width: int, height: int) -> np.ndarray:
    """The quad's corners in the picture turned ``turn`` degrees clockwise."""
    x, y = quad[:, 0], quad[:, 1]
    if turn == 90:
        return np.stack([height - y, x], axis=1)
    if turn == 180:
        return np.stack([width - x, height - y], axis=1)
    if turn == 270:
        return np.stack([y, width - x], axis=1)
    return quad.copy()


def _level(quads: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    """Undo a tilt of a few degrees: the median slope of the long runs' long edges."""
    slopes = []
    for quad in quads:
        edges = sorted((quad[1] - quad[0], quad[3] - quad[0]), key=lambda e: -np.linalg.norm(e))
        if np.linalg.norm(edges[0]) > 3 * np.linalg.norm(edges[1]):
            slope = math.degrees(math.atan2(float(edges[0][1]), float(edges[0][0])))
            slopes.append((slope + 90) % 180 - 90)
    if not slopes:
        return quads
    tilt = statistics.median(slopes)
    if abs(tilt) < _MIN_TILT or abs(tilt) > 30:
        return quads
    angle = math.radians(-tilt)
    cos, sin = math.cos(angle), math.sin(angle)
    centre = np.array([size[0] / 2, size[1] / 2], dtype=np.float32)
    rotation = np.array([[cos, -sin], [sin, cos]], dtype=np.float32)
    return [(quad - centre) @ rotation.T + centre for quad in quads]


def _recognise(engine: Any, pixels: np.ndarray, runs: list[_Run], turn: int) -> list[Word]:
    """Recognise the runs that can hold a field (see the module docstring), in two batches:
    the short runs with the openings of the long ones, then the long ones that open a field."""
    runs = sorted(runs, key=lambda r: (r.box[1], r.box[0]))
    crops = [_crop(pixels, run.quad, turn) for run in runs]
    long_run = [
        run.width > _LONG_RUN * run.height and crop.shape[1] > crop.shape[0]
        for run, crop in zip(runs, crops, strict=True)
    ]
    first = [
        crop[:, : max(1, round(_PREFIX * crop.shape[0]))] if is_long else crop
        for crop, is_long in zip(crops, long_run, strict=True)
    ]
    read = _recognise_crops(engine, first)
    labels = [
        (run, text)
        for run, (text, _), is_long in zip(runs, read, long_run, strict=True)
        if not is_long
    ]
    wanted = [
        index
        for index, is_long in enumerate(long_run)
        if is_long and (_opens_field(read[index][0]) or _beside_label(runs[index], labels))
    ]
    for index, result in zip(
        wanted, _recognise_crops(engine, [crops[i] for i in wanted]), strict=True
    ):
        read[index] = result
    words = []
    for index, (run, (text, score)) in enumerate(zip(runs, read, strict=True)):
        if not text:
            continue
        left, top, right, bottom = run.box
        if long_run[index] and index not in wanted:
            # Only the opening was read: the word covers only that much of the run.
            right = left + run.width * first[index].shape[1] / max(crops[index].shape[1], 1)
        words.append(Word(text, left, top, right, bottom, score))
    return words


def _recognise_crops(engine: Any, crops: list[np.ndarray]) -> list[tuple[str, float]]:
    """Recognise crops in one batch (the engine's recogniser sorts them by width)."""
    if not crops:
        return []
    results, _elapsed = engine.text_rec(crops)
    return [(str(text).strip(), float(score)) for text, score, *_ in results]


def _opens_field(text: str) -> bool:
    if len(_CIPHER.findall(text)) >= 3:  # the 密码区 cipher
        return False
    if _FIELD_OPENING.search(text):
        return True
    compact = [c for c in text if not c.isspace()]
    shaped = sum(1 for c in compact if c.isascii() and (c.isdigit() or c.isupper()))
    return bool(compact) and shaped >= 0.7 * len(compact)


def _beside_label(run: _Run, labels: list[tuple[_Run, str]]) -> bool:
    """A long run just right of a short label on its line (名称: | 青岛惠郡…) holds its value."""
    left, top, _right, bottom = run.box
    middle = (top + bottom) / 2
    for label, text in labels:
        _l_left, l_top, l_right, l_bottom = label.box
        same_line = l_top <= middle <= l_bottom
        if (
            same_line
            and 0 <= left - l_right < 3 * run.height
            and text.rstrip().endswith((":", "："))
        ):
            return True
    return False
