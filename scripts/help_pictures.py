"""Draw the help centre's annotated sample invoices into static/img/help/ (`make help-pictures`).

Schematic invoices of the three kinds customers hold (专票 on paper, 普票 with a 校验码,
数电票 with its 20-digit number), each field the lookup asks for framed and numbered as the
help text refers to it. Drawn with Pillow from the project's own sample values; no external
pictures. Needs a CJK font: Noto Sans CJK SC from the system, or the test corpus's subset.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "static" / "img" / "help"
INK, FRAME, MARK, PAPER = (35, 35, 45), (150, 90, 60), (201, 42, 42), (253, 252, 248)


def _font_path() -> tuple[str, int]:
    """The font file and, in a collection (.ttc), the index of its Simplified Chinese face."""
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}|%{index}", "Noto Sans CJK SC:style=Regular"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        path, _, index = found.partition("|")
        if path:
            return path, int(index or 0)
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    return str(ROOT / "tests" / "fonts" / "NotoSansCJKsc-PortalTestSubset.otf"), 0


FONT, FONT_INDEX = _font_path()


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT, size, index=FONT_INDEX)


# (title, header lines, body lines, marked: {text fragment: number})
KINDS = {
    "special": (
        "北京增值税专用发票",
        ["发票代码：1100241130", "发票号码：12345678", "开票日期：2024年05月14日"],
        "合 计  ¥100.00  ¥13.00",
        "价税合计（大写）壹佰壹拾叁圆整  （小写）¥113.00",
        {"发票代码": 1, "发票号码": 2, "开票日期": 3, "合 计": 4},
    ),
    "ordinary": (
        "北京增值税电子普通发票",
        [
            "发票代码：011002400111",
            "发票号码：12345678",
            "开票日期：2024年05月14日",
            "校验码：65431 82477 18471 14698",
        ],
        "合 计  ¥100.00  ¥13.00",
        "价税合计（大写）壹佰壹拾叁圆整  （小写）¥113.00",
        {"发票代码": 1, "发票号码": 2, "开票日期": 3, "校验码": 6},
    ),
    "digital": (
        "电子发票（普通发票）",
        ["发票号码：24112000000136634917", "开票日期：2024年05月14日"],
        "合 计  ¥47.17  ¥2.83",
        "价税合计（大写）伍拾圆整  （小写）¥50.00",
        {"发票号码": 2, "开票日期": 3, "价税合计": 5},
    ),
}


def draw(kind: str) -> Image.Image:
    title, header, subtotal, total, marked = KINDS[kind]
    page = Image.new("RGB", (1000, 640), PAPER)
    d = ImageDraw.Draw(page)
    body, small, big, tag = font(22), font(20), font(34), font(22)
    d.rectangle((40, 40, 150, 150), outline=INK, width=2)  # where the QR code is printed
    d.text((62, 82), "二维码", fill=INK, font=small)
    d.text((250, 50), title, fill=FRAME, font=big)
    boxes: list[tuple[tuple[int, int, int, int], int]] = []

    def text(xy, line, f):
        d.text(xy, line, fill=INK, font=f)
        for fragment, number in marked.items():
            if line.startswith(fragment):
                box = d.textbbox(xy, line, font=f)
                boxes.append(((box[0] - 6, box[1] - 5, box[2] + 6, box[3] + 5), number))

    for i, line in enumerate(header):
        text((590, 110 + i * 38), line, small)
    d.rectangle((30, 270, 970, 610), outline=FRAME, width=2)
    lines = [
        "购买方 名称：北京示例科技有限公司",
        "统一社会信用代码/纳税人识别号：911101017967003199",
        "项目名称   金额   税率   税额",
        "*信息技术服务*技术服务费",
        subtotal,
        total,
        "销售方 名称：北京销售方有限公司",
    ]
    for i, line in enumerate(lines):
        text((60, 285 + i * 44), line, body)
    for (x0, y0, x1, y1), number in boxes:
        d.rectangle((x0, y0, x1, y1), outline=MARK, width=3)
        middle = (y0 + y1) // 2
        d.ellipse((x1 + 4, middle - 14, x1 + 32, middle + 14), fill=MARK)
        d.text((x1 + 18, middle), str(number), fill="white", font=tag, anchor="mm")
    return page


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        path = OUT / f"{kind}.png"
        page = draw(kind)
        page.save(path, optimize=True)
        print(path.relative_to(ROOT))
        if kind == "ordinary":  # a close-up of the header, readable on a phone as it is
            close_up = OUT / "ordinary-header.png"
            page.crop((570, 98, 1000, 262)).save(close_up, optimize=True)
            print(close_up.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
