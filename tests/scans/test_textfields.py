import pytest

from portal.scans.layout import Word, fields_from_text, fields_from_words
from portal.scans.textfields import TextField, canonical_value
from tests.scans import corpus


@pytest.mark.parametrize("sample", [corpus.BEIJING_E_ORDINARY, corpus.BEIJING_DIGITAL])
def test_every_printed_field_is_read_from_a_text_layer(sample):
    fields = {name: field.value for name, field in fields_from_text(sample.text_lines()).items()}
    expected = {
        "number": sample.number,
        "issue_date": sample.issue_date.isoformat(),
        "amount": str(sample.amount),
        "tax": str(sample.tax),
        "total": str(sample.total),
        "buyer_tax_id": sample.buyer_tax_id,
        "buyer_name": sample.buyer_name,
        "seller_tax_id": sample.seller_tax_id,
        "seller_name": sample.seller_name,
    }
    if sample.code:
        expected |= {"code": sample.code, "check_code": sample.check_code}
    assert fields == expected


def test_ocr_boxes_split_label_from_value_and_carry_their_confidence():
    # OCR gives a label and its value as separate boxes, 合 and 计 far apart, in any order.
    words = [
        Word("￥143.00", 900, 400, 990, 420, 0.92),
        Word("发票号码：", 700, 20, 800, 40, 0.99),
        Word("１２３４５６７８", 810, 20, 930, 40, 0.81),
        Word("开票日期：2024年5月4日", 700, 60, 960, 80, 0.97),
        Word("合", 100, 400, 120, 420, 0.95),
        Word("计", 200, 400, 220, 420, 0.96),
        Word("￥1,100.00", 700, 401, 800, 421, 0.90),
        Word("价税合计（大写）", 100, 450, 260, 470, 0.88),
        Word("壹仟贰佰肆拾叁圆整（小写）￥1,243.00", 300, 450, 700, 470, 0.88),
    ]
    fields = fields_from_words(words)
    assert fields["number"] == TextField("12345678", 0.81)
    assert fields["issue_date"] == TextField("2024-05-04", 0.97)
    assert fields["amount"] == TextField("1100.00", 0.90)
    assert fields["tax"] == TextField("143.00", 0.92)
    assert fields["total"] == TextField("1243.00", 0.88)


def test_a_seller_label_on_the_same_line_wins_over_reading_order():
    fields = fields_from_text(
        [
            "销售方 纳税人识别号：91320621MA1MRHG205",
            "纳税人识别号：911101017967003199",
        ]
    )
    assert fields["seller_tax_id"].value == "91320621MA1MRHG205"
    assert fields["buyer_tax_id"].value == "911101017967003199"


def test_values_of_the_wrong_shape_are_not_fields():
    fields = fields_from_text(
        [
            "发票代码：12345",
            "发票号码：123456789",
            "开票日期：2024年13月40日",
            "校验码：12345 67890",
        ]
    )
    assert fields == {}


def test_a_wrong_check_character_is_still_read_so_the_check_can_say_so():
    fields = fields_from_text(["购买方 纳税人识别号：91320621MA1MRHG207"])
    assert fields["buyer_tax_id"].value == "91320621MA1MRHG207"


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("number", " 2511 2000 0000 0357 0205 ", "25112000000003570205"),
        ("number", "1234567", None),
        ("code", "011002400111", "011002400111"),
        ("check_code", "65431 82477 18471 14698", "65431824771847114698"),
        ("issue_date", "2025年01月06日", "2025-01-06"),
        ("issue_date", "2026-05-19 10:00:00", "2026-05-19"),
        ("issue_date", "yesterday", None),
        ("total", "¥1,234.50", "1234.50"),
        ("amount", "-47.17", "-47.17"),
        ("tax", "1.234", None),
        ("buyer_tax_id", "91110302ma01np925m", "91110302MA01NP925M"),
        ("buyer_tax_id", "12", None),
        ("seller_name", "  北京 示例  公司 ", "北京 示例 公司"),
        ("seller_name", "", None),
    ],
)
def test_canonical_values(name, raw, value):
    assert canonical_value(name, raw) == value
