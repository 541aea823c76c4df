"""Benchmark: the per-image scan pipeline against Pillow's bare decode of the same photo.

DESIGN.md §8: on a 12-megapixel phone photo, normalise + thumbnail + QR must take a median under
100 ms and less than Pillow merely decoding the file at full size; the OCR fallback must stay
under 1.5 s a page. Both are measured in the same process, interleaved, because machines are
noisy; the ratio is what to compare across machines.

The photo is generated: a 4000 × 3000 q92 JPEG (3.8 MB) of an invoice-like page (Chinese text
in the tests' subset of Noto Sans CJK SC, tests/fonts/, a QR code near the top left) on a table,
turned 3°, with sensor noise (σ 9). The pipeline stays under the bare decode because libjpeg
decodes at half scale (``Image.draft``) and the re-encoding and hashing run on the second core;
with that core taken by another process the two come out about even, so the bench prints how
much CPU other processes used meanwhile (and each side's own CPU time).

Real files (tests/scans/real, issue 18): each real PDF through ``extract()`` (QR image, text
layer by position, page render) beside PDFium's bare render of the same page; the real OFD
beside a bare unzip and parse of its parts; and the OCR fallback on real pages — the Qingdao
photo with its QR code blanked, through ``extract()``, beside Pillow's bare decode of the same
JPEG, and each real PDF page rendered to pixels, through ``read_invoice_words`` (turned upright,
only what can hold a field recognised), beside PDFium's bare render and beside recognising every
line (``read_text``). Bar: OCR under 1.5 s median a page.

Run: ``.venv/bin/python bench/scan_pipeline.py [--runs 21] [--ocr-runs 3] [--real-runs 5]
[--strict]``. Not part of the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CpuSnapshot, cpu_breakdown
from portal.scans import OcrPolicy, ScanLimits, extract
from portal.scans.images import normalise
from portal.scans.ocr import ocr_engine, read_invoice_words, read_text
from portal.scans.pdf import render_page

REAL = Path(__file__).resolve().parent.parent / "tests" / "scans" / "real"

FONT = (
    Path(__file__).resolve().parents[1] / "tests" / "fonts" / "NotoSansCJKsc-PortalTestSubset.otf"
)
QR_TEXT = "01,10,011002400111,12345678,100.00,20240514,65431824771847114698,8BDD,"
PAGE_LINES = [
    "发票代码：011002400111      发票号码：12345678",
    "开票日期：2024年05月14日    校验码：65431 82477 18471 14698",
    "购买方 名称：北京示例科技有限公司",
    "纳税人识别号：911101017967003199",
    "*信息技术服务*技术服务费      100.00     13%     13.00",
    "合 计 ¥100.00 ¥13.00",
    "价税合计（大写） 壹佰壹拾叁圆整 （小写）¥113.00",
    "销售方 名称：江苏示例软件有限公司",
    "纳税人识别号：91320621MA1MRHG205",
]
BUDGET_MS = 100.0
OCR_BUDGET_MS = 1500.0


def invoice_page(width: int = 1400) -> Image.Image:
    """An invoice-like page: title, QR code top left, the header and body lines, a frame."""
    page = Image.new("RGB", (width, round(width * 0.64)), (252, 251, 246))
    draw = ImageDraw.Draw(page)

    def font(size: int):
        return ImageFont.truetype(str(FONT), size)

    buffer = io.BytesIO()
    segno.make(QR_TEXT, error="m").save(buffer, kind="png", scale=5, border=2)
    buffer.seek(0)
    page.paste(Image.open(buffer).convert("RGB"), (40, 40))
    draw.text((430, 60), "北京增值税电子普通发票", fill=(150, 90, 60), font=font(44))
    draw.rectangle((30, 250, width - 30, page.height - 30), outline=(150, 90, 60), width=2)
    for index, line in enumerate(PAGE_LINES):
        draw.text((60, 270 + index * 62), line, fill=(35, 35, 45), font=font(26))
    return page


def phone_photo(page: Image.Image, seed: int = 12) -> bytes:
    """The page on a table in a 4000 × 3000 frame, turned 3°, with noise; as a q92 JPEG."""
    rng = np.random.default_rng(seed)
    photo = Image.new("RGB", (4000, 3000), (118, 104, 92))
    scaled = page.resize((3400, round(page.height * 3400 / page.width)), Image.Resampling.LANCZOS)
    scaled = scaled.rotate(
        3, expand=True, fillcolor=(118, 104, 92), resample=Image.Resampling.BICUBIC
    )
    photo.paste(scaled, ((4000 - scaled.width) // 2, (3000 - scaled.height) // 2))
    pixels = np.asarray(photo, dtype=np.float32)
    pixels += rng.normal(0.0, 9.0, pixels.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU milliseconds of one call (CPU counts every thread of the process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered), ordered[0], p90


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs of each (default 21)")
    parser.add_argument("--ocr-runs", type=int, default=3, help="OCR runs (0 skips OCR)")
    parser.add_argument("--real-runs", type=int, default=5, help="runs on each real file")
    parser.add_argument("--save", type=Path, help="write the generated photo here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a bar is missed")
    options = parser.parse_args()

    photo = phone_photo(invoice_page())
    if options.save:
        options.save.write_bytes(photo)
    limits = ScanLimits(ocr=OcrPolicy.NEVER)
    check = extract(photo, "IMG_0001.JPG", limits)
    if check.qr is None or not check.qr.ok:
        print("the pipeline did not read the QR code of the generated photo", file=sys.stderr)
        return 2

    def bare_decode():
        Image.open(io.BytesIO(photo)).load()

    def pipeline():
        return extract(photo, "IMG_0001.JPG", limits)

    def collect(results: list) -> None:
        results.append(pipeline())

    for _ in range(3):
        bare_decode()
        pipeline()
    before = CpuSnapshot.take()
    decode_wall, decode_cpu, scan_wall, scan_cpu, stages = [], [], [], [], {}
    for _ in range(options.runs):
        wall, cpu = timed(bare_decode)
        decode_wall.append(wall)
        decode_cpu.append(cpu)
        results: list = []
        wall, cpu = timed(partial(collect, results))
        scan_wall.append(wall)
        scan_cpu.append(cpu)
        for stage, ms in results[0].timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    spent, busy, wall_seconds = cpu_breakdown(before, CpuSnapshot.take(), {})
    others = max(0.0, busy - spent["harness"]) / wall_seconds

    decode, scan = summary(decode_wall), summary(scan_wall)
    ratio = scan[0] / decode[0]
    width, height = Image.open(io.BytesIO(photo)).size
    print(
        f"Scan pipeline on a {width}×{height} JPEG ({len(photo) / 1e6:.1f} MB), "
        f"{options.runs} interleaved runs, QR code found {check.qr.where}; other processes "
        f"kept {others:.1f} of {os.cpu_count()} cores busy meanwhile"
    )
    print()
    header = f"{'':46} {'median':>8} {'min':>8} {'p90':>8} {'CPU':>8}"
    print(header)
    print("-" * len(header))
    for label, wall, cpu in (
        ("Pillow full decode (baseline)", decode, decode_cpu),
        ("extract(): sniff, SHA-256, normalise, QR", scan, scan_cpu),
    ):
        print(
            f"{label:46} {wall[0]:6.1f}ms {wall[1]:6.1f}ms {wall[2]:6.1f}ms "
            f"{statistics.median(cpu):6.1f}ms"
        )
    for stage, samples in stages.items():
        print(f"{'  ' + stage:46} {statistics.median(samples):6.1f}ms")
    print()
    print(
        f"ratio pipeline / bare decode: median {ratio:.2f}, best {scan[1] / decode[1]:.2f}"
        f"  (bar: median < 1.00 and < {BUDGET_MS:.0f} ms)"
    )
    passed = ratio < 1.0 and scan[0] < BUDGET_MS

    if options.ocr_runs:
        started = time.perf_counter()
        ocr_engine()
        load_ms = (time.perf_counter() - started) * 1000
        before = CpuSnapshot.take()
        picture = normalise(photo, limits=limits)
        read_text(picture.image)  # first inference warms ONNX Runtime up
        ocr_ms = [timed(lambda: read_text(picture.image))[0] for _ in range(options.ocr_runs)]
        page = invoice_page()
        page_ms = [timed(lambda: read_text(page))[0] for _ in range(options.ocr_runs)]
        spent, busy, wall_seconds = cpu_breakdown(before, CpuSnapshot.take(), {})
        others = max(0.0, busy - spent["harness"]) / wall_seconds
        print()
        print(
            f"OCR model load (once per process): {load_ms:.0f} ms; other processes kept "
            f"{others:.1f} cores busy during the OCR runs"
        )
        print(
            f"OCR per page, the photo (display size {picture.image.width}×"
            f"{picture.image.height}): median {statistics.median(ocr_ms):.0f} ms"
        )
        print(
            f"OCR per page, a clean 1400×896 scan: median {statistics.median(page_ms):.0f} ms"
            f"  (bar: < {OCR_BUDGET_MS:.0f} ms)"
        )
        passed = (
            passed and max(statistics.median(ocr_ms), statistics.median(page_ms)) < OCR_BUDGET_MS
        )
    if options.real_runs:
        passed = real_files(options.real_runs) and passed
    print()
    print("PASS" if passed else "MISS: a bar of DESIGN.md §8 is not met on this machine")
    return 1 if options.strict and not passed else 0


def _median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm
    return statistics.median(timed(action)[0] for _ in range(runs))


def _bare_ofd(data: bytes) -> None:
    import zipfile
    from xml.etree import ElementTree

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            content = archive.read(name)
            if name.endswith(".xml"):
                with contextlib.suppress(ElementTree.ParseError):
                    ElementTree.fromstring(content)  # noqa: S314 - our own sample, a baseline


def real_files(runs: int) -> bool:
    """The real-file rows (issue 18); True when the OCR bar is met on every real page."""
    no_ocr = ScanLimits(ocr=OcrPolicy.NEVER)
    before = CpuSnapshot.take()
    rows: list[tuple[str, float, str, float]] = []
    for path in sorted(REAL.glob("*.pdf")):
        data = path.read_bytes()
        rows.append(
            (
                f"{path.name}: extract()",
                _median_ms(lambda d=data: extract(d, "a.pdf", no_ocr), runs),
                "PDFium bare render",
                _median_ms(lambda d=data: render_page(d), runs),
            )
        )
    for path in sorted(REAL.glob("*.ofd")):
        data = path.read_bytes()
        rows.append(
            (
                f"{path.name}: extract()",
                _median_ms(lambda d=data: extract(d, "a.ofd", no_ocr), runs),
                "bare unzip + XML parse",
                _median_ms(lambda d=data: _bare_ofd(d), runs),
            )
        )
    ocr_ms: list[float] = []
    ocr_engine()
    photo = Image.open(REAL / "digital-2024-qingdao.jpg").convert("RGB")
    ImageDraw.Draw(photo).rectangle((20, 20, 170, 165), fill="white")  # blank the QR code
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=92)
    jpeg = buffer.getvalue()
    fallback = _median_ms(lambda: extract(jpeg, "a.jpg"), runs)
    ocr_ms.append(fallback)
    rows.append(
        (
            "Qingdao photo, QR blanked: extract() + OCR",
            fallback,
            "Pillow bare decode",
            _median_ms(lambda: Image.open(io.BytesIO(jpeg)).load(), runs),
        )
    )
    everything: list[float] = []
    for path in sorted(REAL.glob("*.pdf")):
        data = path.read_bytes()
        page = render_page(data)
        ms = _median_ms(lambda p=page: read_invoice_words(p), runs)
        ocr_ms.append(ms)
        everything.append(_median_ms(lambda p=page: read_text(p), runs))
        rows.append(
            (
                f"{path.name} page: OCR by field",
                ms,
                "PDFium bare render",
                _median_ms(lambda d=data: render_page(d), runs),
            )
        )
    spent, busy, wall_seconds = cpu_breakdown(before, CpuSnapshot.take(), {})
    others = max(0.0, busy - spent["harness"]) / wall_seconds
    print()
    print(
        f"Real files (tests/scans/real), median of {runs} runs each; other processes kept "
        f"{others:.1f} cores busy meanwhile"
    )
    header = f"{'':48} {'median':>9}   {'baseline (same file)':28} {'median':>9} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for label, ms, base_label, base_ms in rows:
        print(f"{label:48} {ms:7.0f}ms   {base_label:28} {base_ms:7.0f}ms {ms / base_ms:6.1f}")
    print(
        f"OCR on real pages: median {statistics.median(ocr_ms):.0f} ms, worst {max(ocr_ms):.0f} ms"
        f" (every line recognised instead: median {statistics.median(everything):.0f} ms)"
        f"  (bar: median < {OCR_BUDGET_MS:.0f} ms)"
    )
    return statistics.median(ocr_ms) < OCR_BUDGET_MS


if __name__ == "__main__":
    sys.exit(main())
