"""A corpus of invoice evidence the tests make themselves: no binary fixtures in the repository.

Pages are drawn with the subset of Noto Sans CJK SC under tests/fonts/ (no system font needed;
``make test-font`` regenerates it after a new character is printed here) and carry a real segno
QR code; photos put a page on a background, turn, dim and soil it the way phones do; PDF, OFD
and 数电票 XML files are written by hand so that each hostile variant differs from a good file
by one feature.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFont

FONT_PATH = Path(__file__).resolve().parents[1] / "fonts" / "NotoSansCJKsc-PortalTestSubset.otf"
INK = (35, 35, 45)
FRAME = (150, 90, 60)


@dataclass(frozen=True)
class InvoiceSample:
    """The fields printed on one invoice, and what its QR code says."""

    title: str
    type_code: str
    code: str
    number: str
    issue_date: date
    check_code: str
    buyer_name: str
    buyer_tax_id: str
    seller_name: str
    seller_tax_id: str
    amount: Decimal
    tax: Decimal
    total: Decimal
    token: str = "8BDD"

    @property
    def is_digital(self) -> bool:
        return not self.code

    @property
    def qr_text(self) -> str:
        qr_amount = self.total if self.is_digital else self.amount
        return (
            f"01,{self.type_code},{self.code},{self.number},{qr_amount},"
            f"{self.issue_date:%Y%m%d},{self.check_code},{self.token},"
        )

    @property
    def date_text(self) -> str:
        return f"{self.issue_date:%Y年%m月%d日}"

    def text_lines(self) -> list[str]:
        """The invoice's printed text, top to bottom, as its PDF text layer would hold it."""
        tax_id_label = "统一社会信用代码/纳税人识别号" if self.is_digital else "纳税人识别号"
        lines = [self.title]
        if self.code:
            lines.append(f"发票代码：{self.code}")
        lines += [f"发票号码：{self.number}", f"开票日期：{self.date_text}"]
        if self.check_code:
            grouped = " ".join(self.check_code[i : i + 5] for i in range(0, 20, 5))
            lines.append(f"校验码：{grouped}")
        lines += [
            f"购买方 名称：{self.buyer_name}",
            f"{tax_id_label}：{self.buyer_tax_id}",
            "项目名称 金额 税率 税额",
            f"*信息技术服务*技术服务费 {self.amount} 13% {self.tax}",
            f"合 计 ¥{self.amount} ¥{self.tax}",
            f"价税合计（大写） 壹佰壹拾叁圆整 （小写）¥{self.total}",
            f"销售方 名称：{self.seller_name}",
            f"{tax_id_label}：{self.seller_tax_id}",
        ]
        return lines


BEIJING_E_ORDINARY = InvoiceSample(
    title="北京增值税电子普通发票",
    type_code="10",
    code="011002400111",
    number="12345678",
    issue_date=date(2024, 5, 14),
    check_code="65431824771847114698",
    buyer_name="北京示例科技有限公司",
    buyer_tax_id="911101017967003199",
    seller_name="江苏示例软件有限公司",
    seller_tax_id="91320621MA1MRHG205",
    amount=Decimal("100.00"),
    tax=Decimal("13.00"),
    total=Decimal("113.00"),
)

BEIJING_DIGITAL = InvoiceSample(
    title="电子发票（普通发票）",
    type_code="32",
    code="",
    number="24112000000136634917",
    issue_date=date(2024, 5, 14),
    check_code="",
    buyer_name="北京示例科技有限公司",
    buyer_tax_id="911101017967003199",
    seller_name="北京示例餐饮有限公司",
    seller_tax_id="91440106068698695J",
    amount=Decimal("47.17"),
    tax=Decimal("2.83"),
    total=Decimal("50.00"),
    token="0CA3",
)

SHANGHAI_DIGITAL = replace(
    BEIJING_DIGITAL, number="24312000000136634917", seller_name="上海示例有限公司", token="1DD6"
)


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size)


def qr_image(text: str, *, module_px: int = 6, border: int = 2) -> Image.Image:
    """A QR code as the invoice prints it (error level M), ``module_px`` pixels a module."""
    code = segno.make(text, error="m", micro=False)
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=module_px, border=border)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def invoice_page(
    sample: InvoiceSample, *, width: int = 1400, qr: bool = True, qr_module_px: int | None = None
) -> Image.Image:
    """Draw the invoice as a clean scan: QR top left, header right, blocks, totals, frame."""
    scale = width / 1400
    height = round(900 * scale)
    page = Image.new("RGB", (width, height), (253, 252, 248))
    draw = ImageDraw.Draw(page)

    def at(x: float, y: float) -> tuple[int, int]:
        return round(x * scale), round(y * scale)

    body, small, title = font(round(26 * scale)), font(round(22 * scale)), font(round(44 * scale))
    if qr:
        module = qr_module_px or max(1, round(5 * scale))
        page.paste(qr_image(sample.qr_text, module_px=module), at(40, 40))
    draw.text(at(430, 50), sample.title, fill=FRAME, font=title)
    lines = sample.text_lines()[1:]
    header_labels = ("发票代码", "发票号码", "开票日期", "校验码")
    header = [line for line in lines if line.startswith(header_labels)]
    for index, line in enumerate(header):
        draw.text(at(930, 40 + index * 40), line, fill=INK, font=small)
    draw.rectangle((*at(30, 250), *at(1370, 870)), outline=FRAME, width=max(1, round(2 * scale)))
    rest = [line for line in lines if line not in header]
    for index, line in enumerate(rest):
        draw.text(at(60, 270 + index * 66), line, fill=INK, font=body)
    return page


def phone_photo(
    page: Image.Image,
    *,
    size: tuple[int, int] = (4000, 3000),
    page_width: int = 3400,
    angle: float = 0.0,
    noise: float = 8.0,
    brightness: float = 1.0,
    seed: int = 7,
) -> Image.Image:
    """Put ``page`` on a table the way a phone sees it: scaled, turned, dimmed, noisy."""
    rng = np.random.default_rng(seed)
    photo = Image.new("RGB", size, (118, 104, 92))
    scaled = page.resize((page_width, round(page.height * page_width / page.width)))
    if angle:
        scaled = scaled.rotate(angle, expand=True, fillcolor=(118, 104, 92), resample=Image.BICUBIC)
    photo.paste(scaled, ((size[0] - scaled.width) // 2, (size[1] - scaled.height) // 2))
    pixels = np.asarray(photo, dtype=np.float32) * brightness
    if noise:
        pixels += rng.normal(0.0, noise, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def encode(image: Image.Image, image_format: str = "JPEG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def gps_exif(orientation: int | None = None) -> bytes:
    """EXIF with a GPS position (Tiananmen) and a camera model, as a phone writes it."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Phone 15"
    if orientation is not None:
        exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (39.0, 54.0, 27.0)
    gps[3] = "E"
    gps[4] = (116.0, 23.0, 49.0)
    return exif.tobytes()


# ---- PDF, written by hand so each hostile variant differs by one feature ----------------------


def invoice_pdf(
    sample: InvoiceSample,
    *,
    text: bool = True,
    qr: bool = True,
    qr_vector: bool = False,
    catalog_extra: str = "",
    page_extra: str = "",
    page_size: tuple[int, int] = (680, 400),
    qr_sample: InvoiceSample | None = None,
) -> bytes:
    """A one-page e-invoice PDF: a text layer (Type0 font, ToUnicode) and the QR as an image
    (or, with ``qr_vector``, drawn as filled squares, which only rendering the page can read).
    ``qr_sample`` puts another invoice's QR code on the page, for sources that disagree.
    """
    lines = sample.text_lines() if text else []
    characters = sorted({char for line in lines for char in line})
    cid = {char: index + 1 for index, char in enumerate(characters)}
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    content = []
    for index, line in enumerate(lines):
        glyphs = "".join(f"{cid[char]:04X}" for char in line)
        y = page_size[1] - 30 - index * 24
        content.append(f"BT /F1 11 Tf 200 {y} Td <{glyphs}> Tj ET")
    if qr:
        content.append("q 120 0 0 120 30 250 cm /Im1 Do Q")
    if qr_vector:
        matrix = segno.make(sample.qr_text, error="m", micro=False).matrix
        module = 3
        for row, values in enumerate(matrix):
            for column, dark in enumerate(values):
                if dark:
                    x, y = 36 + column * module, 364 - row * module
                    content.append(f"{x} {y} {module} {module} re f")
    stream = "\n".join(content).encode()

    resources = []
    if lines:
        cmap = _to_unicode_cmap(cid)
        to_unicode = add(_stream(cmap))
        descendant = add(
            b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /NotoSansCJK "
            b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
            b"/FontDescriptor << /Type /FontDescriptor /FontName /NotoSansCJK /Flags 4 "
            b"/FontBBox [0 0 1000 1000] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 700 "
            b"/StemV 80 >> /DW 1000 >>"
        )
        font_object = add(
            f"<< /Type /Font /Subtype /Type0 /BaseFont /NotoSansCJK /Encoding /Identity-H "
            f"/DescendantFonts [{descendant} 0 R] /ToUnicode {to_unicode} 0 R >>".encode()
        )
        resources.append(f"/Font << /F1 {font_object} 0 R >>")
    if qr:
        matrix = qr_image((qr_sample or sample).qr_text, module_px=4).convert("L")
        image = add(
            _stream(
                matrix.tobytes(),
                f"/Type /XObject /Subtype /Image /Width {matrix.width} /Height {matrix.height} "
                f"/ColorSpace /DeviceGray /BitsPerComponent 8",
                compress=True,
            )
        )
        resources.append(f"/XObject << /Im1 {image} 0 R >>")
    contents = add(_stream(stream, compress=True))
    pages_number = len(objects) + 2
    page = add(
        f"<< /Type /Page /Parent {pages_number} 0 R /MediaBox [0 0 {page_size[0]} {page_size[1]}] "
        f"/Resources << {' '.join(resources)} >> /Contents {contents} 0 R {page_extra} >>".encode()
    )
    add(f"<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>".encode())
    catalog = add(f"<< /Type /Catalog /Pages {pages_number} 0 R {catalog_extra} >>".encode())
    return _pdf_file(objects, catalog)


def _to_unicode_cmap(cid: dict[str, int]) -> bytes:
    entries = [f"<{code:04X}> <{ord(char):04X}>" for char, code in cid.items()]
    blocks = []
    for start in range(0, len(entries), 100):
        chunk = entries[start : start + 100]
        blocks.append(f"{len(chunk)} beginbfchar\n" + "\n".join(chunk) + "\nendbfchar")
    return (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
        "1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
        + "\n".join(blocks)
        + "\nendcmap CMapName currentdict /CMap defineresource pop end end"
    ).encode()


def _stream(data: bytes, dictionary: str = "", *, compress: bool = False) -> bytes:
    if compress:
        data = zlib.compress(data)
        dictionary += " /Filter /FlateDecode"
    return f"<< {dictionary} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream"


def _pdf_file(objects: list[bytes], root: int) -> bytes:
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# ---- OFD and 数电票 XML -------------------------------------------------------------------------

OFD_NS = "http://www.ofdspec.org/2016"


def invoice_ofd(sample: InvoiceSample, *, custom_data: bool = True, qr: bool = True) -> bytes:
    """An OFD e-invoice: OFD.xml with the invoice's CustomDatas, one page of text, the QR image."""
    pairs = {
        "发票号码": sample.number,
        "开票日期": sample.date_text,
        "合计金额": str(sample.amount),
        "合计税额": str(sample.tax),
        "价税合计": str(sample.total),
        "购买方纳税人识别号": sample.buyer_tax_id,
        "销售方纳税人识别号": sample.seller_tax_id,
    }
    if sample.code:
        pairs = {"发票代码": sample.code, **pairs, "校验码": sample.check_code}
    entries = "".join(
        f'<ofd:CustomData Name="{name}">{value}</ofd:CustomData>' for name, value in pairs.items()
    )
    custom = f"<ofd:CustomDatas>{entries}</ofd:CustomDatas>" if custom_data else ""
    ofd_xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{OFD_NS}" Version="1.1" '
        f'DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>9f3c0e1a2b3c</ofd:DocID>'
        f"<ofd:Creator>portal-tests</ofd:Creator>{custom}</ofd:DocInfo>"
        f"<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
    )
    text_objects = "".join(
        f'<ofd:TextObject ID="{index + 10}" Boundary="10 {10 + index * 6} 180 5" Font="1" '
        f'Size="3"><ofd:TextCode X="0" Y="3">{line}</ofd:TextCode></ofd:TextObject>'
        for index, line in enumerate(sample.text_lines())
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{OFD_NS}"><ofd:Content>'
        f'<ofd:Layer ID="2">{text_objects}</ofd:Layer></ofd:Content></ofd:Page>'
    )
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="{OFD_NS}">'
        f"<ofd:CommonData><ofd:MaxUnitID>100</ofd:MaxUnitID></ofd:CommonData><ofd:Pages>"
        f'<ofd:Page ID="1" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages></ofd:Document>'
    )
    members = {
        "OFD.xml": ofd_xml.encode(),
        "Doc_0/Document.xml": document.encode(),
        "Doc_0/Pages/Page_0/Content.xml": content.encode(),
    }
    if qr:
        members["Doc_0/Res/qr.png"] = encode(qr_image(sample.qr_text, module_px=4), "PNG")
    return zip_bytes(members)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def einvoice_xml(sample: InvoiceSample, *, namespace: str | None = None) -> bytes:
    """A 数电票 XML as the national platform exports it (EInvoice root), optionally namespaced."""
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><EInvoice{xmlns}><Header>'
        f"<EIid>{sample.number}</EIid></Header><EInvoiceData>"
        f"<SellerInformation><SellerIdNum>{sample.seller_tax_id}</SellerIdNum>"
        f"<SellerName>{sample.seller_name}</SellerName></SellerInformation>"
        f"<BuyerInformation><BuyerIdNum>{sample.buyer_tax_id}</BuyerIdNum>"
        f"<BuyerName>{sample.buyer_name}</BuyerName></BuyerInformation>"
        f"<BasicInformation><TotalAmWithoutTax>{sample.amount}</TotalAmWithoutTax>"
        f"<TotalTaxAm>{sample.tax}</TotalTaxAm>"
        f"<TotalTax-includedAmount>{sample.total}</TotalTax-includedAmount></BasicInformation>"
        f"</EInvoiceData><TaxSupervisionInfo><InvoiceNumber>{sample.number}</InvoiceNumber>"
        f"<IssueTime>{sample.issue_date:%Y-%m-%d}</IssueTime></TaxSupervisionInfo></EInvoice>"
    ).encode()


# ---- hostile files ------------------------------------------------------------------------------


@functools.cache
def png_bomb(side: int = 40_000) -> bytes:
    """A valid PNG of ``side`` × ``side`` 1-bit pixels, all zero: tiny on disk, 1.6 GP decoded."""
    row = b"\x00" + bytes((side + 7) // 8)
    compressor = zlib.compressobj(9)
    blocks = [compressor.compress(row * 1000) for _ in range(side // 1000)]
    blocks.append(compressor.compress(row * (side % 1000)))
    blocks.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(blocks))
        + _png_chunk(b"IEND", b"")
    )


def png_with_text_chunk(image: Image.Image, text_bytes: int, *, compressed: bool) -> bytes:
    """A PNG whose metadata holds ``text_bytes`` of text (zTXt: a small chunk that inflates)."""
    plain = encode(image, "PNG")
    if compressed:
        chunk = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * text_bytes, 9))
    else:
        chunk = _png_chunk(b"tEXt", b"Comment\x00" + b"A" * text_bytes)
    # Insert before IEND, where text chunks may legally sit.
    return plain[:-12] + chunk + plain[-12:]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def jpeg_html_polyglot(image: Image.Image) -> bytes:
    """A real JPEG that also carries an HTML page (in a COM segment and after the end)."""
    jpeg = encode(image, "JPEG", quality=80)
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    comment = b"\xff\xfe" + struct.pack(">H", len(html) + 2) + html
    return jpeg[:2] + comment + jpeg[2:] + html


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE EInvoice [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b"]>\n<EInvoice><InvoiceNumber>&lol9;</InvoiceNumber></EInvoice>\n"
)

EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE EInvoice [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
    b"<EInvoice><InvoiceNumber>&secret;</InvoiceNumber></EInvoice>\n"
)

SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" '
    b'height="10"><script>alert(1)</script><rect width="10" height="10"/></svg>\n'
)

HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>x</title></head><body>hi</body></html>\n"
