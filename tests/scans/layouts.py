"""Invoices laid out the way real issuing software lays them out, to reproduce each cause of
issue 18 in a generated file: labels and values placed by position and written in
content-stream order (labels first, values later), spaced labels (``名    称``, ``合   计``),
vertical block labels, a 数电票 with the buyer left and the seller right (an individual buyer
without a taxpayer ID), a paper 专票 with an unlabelled code and ``№``; as PDF (upright, with
``/Rotate``, or drawn turned), as OFD (labels on the template page, an attached invoice XML, a
JBIG2 QR code), or as words for the layout reader directly.

Coordinates are points on a 610 × 394 page, y from the top, like the real samples.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from xml.sax.saxutils import escape

from portal.scans.layout import Word
from tests.scans import corpus

PAGE = (610, 394)
REAL = Path(__file__).parent / "real"


@dataclass(frozen=True)
class Piece:
    """A run of printed text at (x, y) (y from the top), ``size`` points high."""

    x: float
    y: float
    text: str
    size: float = 9.0
    label: bool = False


def _label(x: float, y: float, text: str, size: float = 9.0) -> Piece:
    return Piece(x, y, text, size, label=True)


def _vertical(x: float, y: float, text: str, step: float = 15.0) -> list[Piece]:
    return [_label(x, y + index * step, char) for index, char in enumerate(text)]


CIPHER = [
    "03392/<9405<-48<-9/7-376018>",
    "<>/9+0313+-33/2<*8>-18-455-<",
    "/>1*168+59+267--57>00></0110",
    "*+<*85>6/901++2319681*-//323",
]


def legacy_pieces(sample: corpus.InvoiceSample) -> list[Piece]:
    """A 增值税电子普通发票 as Didi's PDF lays it out."""
    grouped = " ".join(sample.check_code[i : i + 5] for i in range(0, 20, 5))
    pieces = [
        _label(196, 25, sample.title, 16),
        _label(432, 25, "发票代码:"),
        Piece(475, 25, sample.code),
        _label(432, 40, "发票号码:"),
        Piece(475, 40, sample.number),
        _label(432, 54, "开票日期:"),
        Piece(475, 54, sample.date_text),
        _label(432, 68, "校 验 码:"),
        Piece(475, 68, grouped),
        _label(24, 72, "机器编号:"),
        Piece(70, 72, "499099801283"),
        *_vertical(29, 96, "购买方"),
        _label(48, 90, "名    称:"),
        Piece(110, 90, sample.buyer_name),
        _label(48, 104, "纳税人识别号:"),
        Piece(110, 104, sample.buyer_tax_id),
        _label(48, 118, "地 址、电 话:"),
        Piece(110, 118, "北京市海淀区示例路1号 010-12345678"),
        _label(48, 133, "开户行及账号:"),
        Piece(110, 133, "示例银行北京分行 1234567890"),
        *_vertical(350, 95, "密码区"),
        *[Piece(369, 90 + index * 14, line, 8) for index, line in enumerate(CIPHER)],
        _label(42, 152, "货物或应税劳务、服务名称"),
        _label(415, 152, "金 额"),
        _label(482, 152, "税率"),
        _label(531, 152, "税 额"),
        Piece(25, 166, "*信息技术服务*技术服务费"),
        Piece(443, 166, str(sample.amount)),
        Piece(491, 166, "13%"),
        Piece(566, 166, str(sample.tax)),
        _label(73, 262, "合"),
        _label(109, 262, "计"),
        Piece(435, 262, f"¥{sample.amount}"),
        Piece(559, 262, f"¥{sample.tax}"),
        _label(61, 280, "价税合计（大写）"),
        Piece(184, 280, "壹佰壹拾叁圆整"),
        _label(469, 280, "（小写）"),
        Piece(505, 280, f"¥{sample.total}"),
        *_vertical(28, 303, "销售方"),
        _label(48, 300, "名    称:"),
        Piece(108, 300, sample.seller_name),
        _label(48, 313, "纳税人识别号:"),
        Piece(108, 313, sample.seller_tax_id),
        _label(48, 327, "地 址、电 话:"),
        Piece(108, 327, "江苏省南京市示例路2号 025-87654321"),
        _label(48, 341, "开户行及账号:"),
        Piece(108, 341, "示例银行南京分行 9876543210"),
        _label(31, 362, "收 款 人:"),
        _label(441, 362, "销 售 方:（章）"),
    ]
    return pieces


def digital_pieces(sample: corpus.InvoiceSample, *, individual: bool = False) -> list[Piece]:
    """A 数电票 as the Hunan PDF lays it out: buyer left, seller right, vertical block labels.
    An ``individual`` buyer has a name and an empty taxpayer ID."""
    tax_label = "统一社会信用代码/纳税人识别号："
    pieces = [
        _label(195, 25, sample.title, 16),
        _label(438, 35, "发票号码："),
        Piece(482, 35, sample.number),
        _label(438, 52, "开票日期："),
        Piece(482, 52, sample.date_text),
        *_vertical(17, 92, "购买方信息", 10),
        *_vertical(301, 92, "销售方信息", 10),
        _label(32, 98, "名称："),
        Piece(57, 98, "张三" if individual else sample.buyer_name),
        _label(32, 128, tax_label, 8),
        _label(317, 98, "名称："),
        Piece(340, 98, sample.seller_name),
        _label(317, 128, tax_label, 8),
        Piece(438, 128, sample.seller_tax_id),
        _label(44, 152, "项目名称"),
        _label(406, 152, "金 额"),
        _label(446, 152, "税率/征收率"),
        _label(550, 152, "税 额"),
        Piece(13, 166, "*餐饮服务*餐费"),
        Piece(412, 166, str(sample.amount)),
        Piece(468, 166, "6%"),
        Piece(565, 166, str(sample.tax)),
        _label(58, 262, "合   计"),
        Piece(401, 262, f"¥{sample.amount}"),
        Piece(556, 262, f"¥{sample.tax}"),
        _label(47, 280, "价税合计（大写）"),
        Piece(179, 280, "伍拾圆整"),
        _label(412, 280, "（小写）"),
        Piece(442, 280, f"¥{sample.total}"),
        _label(55, 370, "开票人："),
    ]
    if not individual:
        pieces.append(Piece(153, 128, sample.buyer_tax_id))
    return pieces


PAPER_SPECIAL = corpus.InvoiceSample(
    title="北京增值税专用发票",
    type_code="01",
    code="1100191130",
    number="05812345",
    issue_date=corpus.BEIJING_E_ORDINARY.issue_date,
    check_code="",
    buyer_name="北京示例科技有限公司",
    buyer_tax_id="911101017967003199",
    seller_name="江苏示例软件有限公司",
    seller_tax_id="91320621MA1MRHG205",
    amount=corpus.BEIJING_E_ORDINARY.amount,
    tax=corpus.BEIJING_E_ORDINARY.tax,
    total=corpus.BEIJING_E_ORDINARY.total,
)


def paper_pieces(sample: corpus.InvoiceSample = PAPER_SPECIAL) -> list[Piece]:
    """A paper 专票: the code printed unlabelled top left, the number after №, no check code."""
    pieces = [
        Piece(40, 22, sample.code, 14),
        _label(200, 22, sample.title, 16),
        Piece(450, 22, f"№ {sample.number}", 14),
        _label(432, 54, "开票日期:"),
        Piece(475, 54, sample.date_text),
    ]
    keep = ("发票代码", "发票号码", "校 验 码", "机器编号", "499099801283")
    legacy = [
        piece for piece in legacy_pieces(sample) if piece.y > 80 and not piece.text.startswith(keep)
    ]
    return pieces + legacy


def words(pieces: list[Piece]) -> list[Word]:
    """The pieces as the layout reader receives them (one word a run, boxes from the size)."""
    return [Word(p.text, p.x, p.y, p.x + p.size * len(p.text) * 0.9, p.y + p.size) for p in pieces]


def pdf(
    pieces: list[Piece],
    *,
    qr_text: str | None = None,
    rotate: int = 0,
    turned: bool = False,
) -> bytes:
    """A one-page PDF whose content stream writes every label first and every value after,
    last value first. ``rotate`` sets ``/Rotate``; ``turned`` draws the page a quarter turn
    anticlockwise inside a sideways media box (with ``rotate=90`` it is shown upright again).
    """
    ordered = [p for p in pieces if p.label] + [p for p in reversed(pieces) if not p.label]
    # A one-glyph text object of a font without outlines gets no box from PDFium (real fonts
    # have outlines): a trailing space gives it one.
    ordered = [replace(p, text=p.text + " ") if len(p.text) == 1 else p for p in ordered]
    characters = sorted({char for piece in ordered for char in piece.text})
    cid = {char: index + 1 for index, char in enumerate(characters)}
    width, height = PAGE
    content = []
    if turned:
        # Page space is height × width; the invoice is drawn turned a quarter anticlockwise.
        content.append(f"q 0 1 -1 0 {height} 0 cm")
    for piece in ordered:
        glyphs = "".join(f"{cid[char]:04X}" for char in piece.text)
        baseline = height - piece.y - piece.size
        content.append(f"BT /F1 {piece.size} Tf {piece.x} {baseline} Td <{glyphs}> Tj ET")
    if qr_text:
        content.append(f"q 70 0 0 70 20 {height - 90} cm /Im1 Do Q")
    if turned:
        content.append("Q")
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    to_unicode = add(corpus._stream(corpus._to_unicode_cmap(cid)))
    descendant = add(
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /NotoSansCJK "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
        b"/FontDescriptor << /Type /FontDescriptor /FontName /NotoSansCJK /Flags 4 "
        b"/FontBBox [0 -120 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 "
        b"/CapHeight 700 /StemV 80 >> /DW 1000 /W ["
        + " ".join(f"{cid[c]} [500]" for c in characters if c.isascii()).encode()
        + b"] >>"
    )
    font = add(
        f"<< /Type /Font /Subtype /Type0 /BaseFont /NotoSansCJK /Encoding /Identity-H "
        f"/DescendantFonts [{descendant} 0 R] /ToUnicode {to_unicode} 0 R >>".encode()
    )
    resources = f"/Font << /F1 {font} 0 R >>"
    if qr_text:
        matrix = corpus.qr_image(qr_text, module_px=4).convert("L")
        image = add(
            corpus._stream(
                matrix.tobytes(),
                f"/Type /XObject /Subtype /Image /Width {matrix.width} /Height {matrix.height} "
                f"/ColorSpace /DeviceGray /BitsPerComponent 8",
                compress=True,
            )
        )
        resources += f" /XObject << /Im1 {image} 0 R >>"
    contents = add(corpus._stream("\n".join(content).encode(), compress=True))
    box = (height, width) if turned else (width, height)
    pages = len(objects) + 2
    page = add(
        f"<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 {box[0]} {box[1]}] /Rotate {rotate} "
        f"/Resources << {resources} >> /Contents {contents} 0 R >>".encode()
    )
    add(f"<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>".encode())
    catalog = add(f"<< /Type /Catalog /Pages {pages} 0 R >>".encode())
    return corpus._pdf_file(objects, catalog)


def _text_objects(pieces: list[Piece], first_id: int) -> str:
    scale = 210 / PAGE[0]  # OFD pages are in millimetres
    objects = []
    for index, piece in enumerate(pieces):
        size = piece.size * scale
        x, y = piece.x * scale, piece.y * scale
        advance = f"g {len(piece.text) - 1} {size:.3f}" if len(piece.text) > 1 else ""
        objects.append(
            f'<ofd:TextObject ID="{first_id + index}" '
            f'Boundary="{x:.2f} {y:.2f} 80 {size * 1.3:.2f}" Font="1" Size="{size:.3f}">'
            f'<ofd:TextCode X="0" Y="{size:.3f}" DeltaX="{advance}">'
            f"{escape(piece.text)}</ofd:TextCode></ofd:TextObject>"
        )
    return "".join(objects)


def original_invoice_xml(sample: corpus.InvoiceSample, *, total: str | None = None) -> bytes:
    """The ``eInvoice`` an issuing system attaches to its OFD (schema of the Zhejiang sample)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><eInvoice '
        'xmlns:fp="http://www.edrm.org.cn/schema/e-invoice/2019" Version="1.0">'
        f"<fp:InvoiceCode>{sample.code}</fp:InvoiceCode><fp:InvoiceNo>{sample.number}</fp:InvoiceNo>"
        f"<fp:IssueDate>{sample.date_text}</fp:IssueDate>"
        f"<fp:InvoiceCheckCode>{sample.check_code}</fp:InvoiceCheckCode>"
        f"<fp:Buyer><fp:BuyerName>{sample.buyer_name}</fp:BuyerName>"
        f"<fp:BuyerTaxID>{sample.buyer_tax_id}</fp:BuyerTaxID></fp:Buyer>"
        f"<fp:Seller><fp:SellerName>{sample.seller_name}</fp:SellerName>"
        f"<fp:SellerTaxID>{sample.seller_tax_id}</fp:SellerTaxID></fp:Seller>"
        f"<fp:TaxInclusiveTotalAmount>{total or sample.total}</fp:TaxInclusiveTotalAmount>"
        f"<fp:TaxTotalAmount>{sample.tax}</fp:TaxTotalAmount>"
        f"<fp:TaxExclusiveTotalAmount>{sample.amount}</fp:TaxExclusiveTotalAmount>"
        f"<fp:GraphCode>{sample.qr_text}</fp:GraphCode></eInvoice>"
    ).encode()


def ofd(
    pieces: list[Piece],
    *,
    template: bool = True,
    attachment: bytes | None = None,
    custom_datas: dict[str, str] | None = None,
    jbig2_qr: bool = False,
) -> bytes:
    """An OFD invoice: values on the page, labels on its template page (``template``), an
    attached invoice XML, CustomDatas, and the real sample's JBIG2 QR image (``jbig2_qr``)."""
    ns = corpus.OFD_NS
    labels = [p for p in pieces if p.label] if template else []
    on_page = [p for p in pieces if not p.label] if template else pieces
    entries = "".join(
        f'<ofd:CustomData Name="{name}">{value}</ofd:CustomData>'
        for name, value in (custom_datas or {}).items()
    )
    ofd_xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{ns}" Version="1.1" '
        f'DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>a1</ofd:DocID>'
        f"<ofd:CustomDatas>{entries}</ofd:CustomDatas></ofd:DocInfo>"
        f"<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
    )
    template_ref = '<ofd:Template TemplateID="2" ZOrder="Background"/>' if template else ""
    page = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{ns}">{template_ref}'
        f'<ofd:Content><ofd:Layer ID="60">{_text_objects(on_page, 100)}</ofd:Layer>'
        f"</ofd:Content></ofd:Page>"
    )
    template_page = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{ns}"><ofd:Content>'
        f'<ofd:Layer ID="3">{_text_objects(labels, 500)}</ofd:Layer></ofd:Content></ofd:Page>'
    )
    attachments_ref = "<ofd:Attachments>Attachs/Attachments.xml</ofd:Attachments>"
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="{ns}"><ofd:CommonData>'
        f'<ofd:MaxUnitID>900</ofd:MaxUnitID><ofd:TemplatePage ID="2" '
        f'BaseLoc="Tpls/Tpl_0/Content.xml"/></ofd:CommonData><ofd:Pages><ofd:Page ID="1" '
        f'BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages>'
        f"{attachments_ref if attachment else ''}</ofd:Document>"
    )
    members = {
        "OFD.xml": ofd_xml.encode(),
        "Doc_0/Document.xml": document.encode(),
        "Doc_0/Pages/Page_0/Content.xml": page.encode(),
        "Doc_0/Tpls/Tpl_0/Content.xml": template_page.encode(),
    }
    if attachment:
        members["Doc_0/Attachs/Attachments.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:Attachments xmlns:ofd="{ns}">'
            f'<ofd:Attachment ID="98" Name="original_invoice" Format="xml" Visible="false">'
            f"<ofd:FileLoc>original_invoice.xml</ofd:FileLoc></ofd:Attachment></ofd:Attachments>"
        ).encode()
        members["Doc_0/Attachs/original_invoice.xml"] = attachment
    if jbig2_qr:
        members["Doc_0/Res/image_78.jb2"] = real_jbig2_qr()
    return corpus.zip_bytes(members)


def real_jbig2_qr() -> bytes:
    """The JBIG2 QR image of the real Zhejiang OFD (its QR says that invoice's fields)."""
    with zipfile.ZipFile(REAL / "e-invoice-2020-zhejiang.ofd") as archive:
        return archive.read("Doc_0/Res/image_78.jb2")


def image(pieces: list[Piece], *, scale: float = 2.2):
    """The pieces drawn as a clean scan (Noto Sans CJK), ``scale`` pixels a point."""
    from PIL import Image, ImageDraw

    page = Image.new("RGB", (round(PAGE[0] * scale), round(PAGE[1] * scale)), (253, 252, 248))
    draw = ImageDraw.Draw(page)
    for piece in pieces:
        font = corpus.font(round(piece.size * scale))
        colour = corpus.FRAME if piece.label else corpus.INK
        draw.text((piece.x * scale, piece.y * scale), piece.text, fill=colour, font=font)
    return page
