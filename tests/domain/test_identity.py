"""Invoice identity: real codes and numbers from fapiao.md, what people type, and refusals."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.errors import InvoiceRuleError
from portal.domain.identity import (
    Generation,
    InvoiceIdentity,
    InvoiceKind,
    parse_identity,
    parse_key,
)
from portal.domain.regions import PLANNED_CITIES, PROVINCES

PROPERTIES = settings(max_examples=200, deadline=None)

# fmt: off
# code, number -> key, kind, type code, year, region code, region name, Beijing?
REAL_IDENTITIES = [
    # fapiao.md §1: the Beijing 12-digit code example (its number made up).
    ("011001600211", "12345678", "011001600211-12345678", InvoiceKind.E_ORDINARY, "10", 2016,
     "1100", "北京", True),
    # fapiao.md §2 QR samples.
    ("012001900111", "51142414", "012001900111-51142414", InvoiceKind.E_ORDINARY, "10", 2019,
     "1200", "天津", False),
    ("042001700112", "21507543", "042001700112-21507543", InvoiceKind.TOLL, "14", 2017,
     "4200", "湖北", False),
    ("037021700211", "27209635", "037021700211-27209635", InvoiceKind.E_ORDINARY, "10", 2017,
     "3702", "青岛", False),
    ("153002209100", "11335527", "153002209100-11335527", InvoiceKind.E_ORDINARY, "10", 2022,
     "5300", "云南", False),
    ("", "25447000001115703415", "25447000001115703415", InvoiceKind.DIGITAL, None, 2025,
     "44", "广东", False),
    ("", "24312000000136634917", "24312000000136634917", InvoiceKind.DIGITAL, None, 2024,
     "31", "上海", False),
    # A 10-digit Beijing 专票 code built to fapiao.md's layout (no real one is published).
    ("1100194130", "00012345", "1100194130-00012345", InvoiceKind.SPECIAL, "01", 2019,
     "1100", "北京", True),
]
# fmt: on


@pytest.mark.parametrize(
    (
        "code",
        "number",
        "key",
        "kind",
        "type_code",
        "year",
        "region_code",
        "region_name",
        "is_beijing",
    ),
    REAL_IDENTITIES,
)
def test_real_identities(
    code, number, key, kind, type_code, year, region_code, region_name, is_beijing
):
    identity = parse_identity(code, number)
    assert identity.key == key
    assert str(identity) == key
    assert identity.kind is kind
    assert identity.type_code == type_code
    assert identity.year == year
    assert identity.region_code == region_code
    assert identity.region_name == region_name
    assert identity.is_beijing is is_beijing
    assert parse_key(key) == identity


def test_generation_and_blockchain_flags():
    legacy = parse_identity("011001600211", "12345678")
    blockchain = parse_identity("153002209100", "11335527")
    digital = parse_identity(None, "24312000000136634917")
    assert (legacy.generation, legacy.is_blockchain) == (Generation.LEGACY, False)
    assert (blockchain.generation, blockchain.is_blockchain) == (Generation.LEGACY, True)
    assert (digital.generation, digital.code, digital.is_blockchain) == (
        Generation.DIGITAL,
        "",
        False,
    )


@pytest.mark.parametrize(
    ("code", "number"),
    [
        ("０１１００１６００２１１", "１２３４５６７８"),  # full-width digits
        ("0110 0160 0211", "1234 5678"),
        ("0110-0160-0211", "1234—5678"),
        (" 011001600211。", "12345678，"),
        ("011、001、600、211", "12·345·678"),
        ("\u3000011001600211\u3000", "12345678\n"),
    ],
)
def test_typed_forms_normalise_to_the_same_identity(code, number):
    assert parse_identity(code, number).key == "011001600211-12345678"


@pytest.mark.parametrize(
    ("digit", "kind"),
    [
        ("1", InvoiceKind.SPECIAL),
        ("5", InvoiceKind.SPECIAL),
        ("3", InvoiceKind.ORDINARY),
        ("6", InvoiceKind.ORDINARY),
        ("2", InvoiceKind.FREIGHT_SPECIAL),
        ("7", InvoiceKind.FREIGHT_SPECIAL),
    ],
)
def test_kind_of_ten_digit_codes_is_digit_eight(digit, kind):
    assert parse_identity(f"1100194{digit}30", "00000001").kind is kind


@pytest.mark.parametrize(
    ("digits", "kind", "type_code"),
    [
        ("04", InvoiceKind.ORDINARY, "04"),
        ("05", InvoiceKind.ORDINARY, "04"),
        ("06", InvoiceKind.ROLL, "11"),
        ("07", InvoiceKind.ROLL, "11"),
        ("11", InvoiceKind.E_ORDINARY, "10"),
        ("12", InvoiceKind.TOLL, "14"),
        ("13", InvoiceKind.E_SPECIAL, "08"),
    ],
)
def test_kind_of_twelve_digit_codes_is_the_last_two_digits(digits, kind, type_code):
    identity = parse_identity(f"0110016002{digits}", "00000001")
    assert (identity.kind, identity.type_code) == (kind, type_code)


def test_the_type_code_only_tells_a_digital_invoices_flavour():
    number = "24312000000136634917"
    assert parse_identity("", number, type_code="31").kind is InvoiceKind.DIGITAL_SPECIAL
    assert parse_identity("", number, type_code="32").kind is InvoiceKind.DIGITAL_ORDINARY
    assert parse_identity("", number, type_code="51").kind is InvoiceKind.DIGITAL
    # Toll invoices carry QR type 10; the code says 14 and the code wins.
    assert parse_identity("042001700112", "21507543", type_code="10").kind is InvoiceKind.TOLL


def test_identities_are_equal_when_their_keys_are():
    special = parse_identity("", "24312000000136634917", type_code="31")
    bare = parse_key("24312000000136634917")
    assert special == bare
    assert hash(special) == hash(bare)
    assert special != parse_key("24312000000136634918")


@pytest.mark.parametrize(
    ("kind", "generation"),
    [
        (kind, Generation.DIGITAL if kind.value.startswith("digital") else Generation.LEGACY)
        for kind in InvoiceKind
    ],
)
def test_every_kind_has_a_generation_and_labels(kind, generation):
    assert kind.generation is generation
    assert kind.label() and kind.label("en")
    assert kind.label("zh_CN") != kind.label("en")


def test_kind_labels():
    assert InvoiceKind.SPECIAL.label() == "增值税专用发票"
    assert InvoiceKind.TOLL.label("en") == "VAT electronic ordinary invoice (road toll)"


@pytest.mark.parametrize(
    ("code", "number", "error", "field", "params"),
    [
        ("", "", "required", "number", {}),
        (None, None, "required", "number", {}),
        ("011001600211", "1234567A", "not_digits", "number", {"char": "A"}),
        ("0110016OO211", "12345678", "not_digits", "code", {"char": "O"}),
        ("011001600211", "1234567", "number_length", "number", {"length": 7}),
        ("011001600211", "123456789012", "number_length", "number", {"length": 12}),
        ("", "12345678", "code_missing", "code", {}),
        ("011001600211", "24312000000136634917", "code_unexpected", "code", {}),
        ("01100160021", "12345678", "code_length", "code", {"length": 11}),
        ("1100194110", "12345678", "code_shape", "code", {}),  # copies digit 1
        ("1100194135", "12345678", "code_shape", "code", {}),  # version digit 5
        ("211001600211", "12345678", "code_prefix", "code", {"digit": "2"}),
        ("1100194430", "12345678", "code_kind_unknown", "code", {"digits": "4"}),
        ("011001600299", "12345678", "code_kind_unknown", "code", {"digits": "99"}),
        ("9900194130", "12345678", "region_unknown", "code", {"region_code": "9900"}),
        ("099001600211", "12345678", "region_unknown", "code", {"region_code": "9900"}),
    ],
)
def test_refusals_say_precisely_why(code, number, error, field, params):
    with pytest.raises(InvoiceRuleError) as caught:
        parse_identity(code, number)
    assert caught.value.code == error
    assert caught.value.field == field
    assert params.items() <= caught.value.params.items()
    assert caught.value.message("zh_CN") and caught.value.message("en")


def test_non_text_is_refused_rather_than_losing_leading_zeros():
    with pytest.raises(InvoiceRuleError) as caught:
        parse_identity(11001600211, "12345678")  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.field) == ("not_text", "code")


@pytest.mark.parametrize(
    "key",
    [
        "011001600211-12345678",
        "０１１００１６００２１１－１２３４５６７８",
        "011001600211 — 12345678",
        "0110 0160 0211 - 1234 5678",
    ],
)
def test_keys_typed_loosely(key):
    assert parse_key(key).key == "011001600211-12345678"


def test_a_digital_key_may_be_grouped():
    assert parse_key("24312 00000 01366 34917").key == "24312000000136634917"
    assert parse_key("24312-00000-01366-34917").key == "24312000000136634917"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "01100160021112345678x",
        "011001600211",
        "011001600211-1234567",
        "a-b",
        "0110016002111234567",
    ],
)
def test_malformed_keys_are_refused(key):
    with pytest.raises(InvoiceRuleError) as caught:
        parse_key(key)
    assert caught.value.code == "key_shape"


def test_a_dashed_key_with_letters_says_which_character():
    with pytest.raises(InvoiceRuleError) as caught:
        parse_key("0110016002X1-12345678")
    assert (caught.value.code, caught.value.params["char"]) == ("not_digits", "X")


def test_years_before_2000():
    assert parse_identity("1100984130", "00000001").year == 1998


# --- properties -------------------------------------------------------------------------------

_digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def _n_digits(n):
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


_legacy_regions = st.sampled_from([f"{code}00" for code in PROVINCES] + list(PLANNED_CITIES))


@st.composite
def legacy_ten(draw):
    code = (
        draw(_legacy_regions)
        + draw(_n_digits(2))
        + draw(_digits)
        + draw(st.sampled_from("123567"))
        + draw(st.sampled_from("23456789"))
        + draw(st.sampled_from("01234"))
    )
    return code, draw(_n_digits(8))


@st.composite
def legacy_twelve(draw):
    if draw(st.booleans()):
        code = (
            "0"
            + draw(_legacy_regions)
            + draw(_n_digits(2))
            + draw(_n_digits(3))
            + draw(st.sampled_from(["04", "05", "06", "07", "11", "12", "13"]))
        )
    else:
        code = "1" + draw(_legacy_regions) + draw(_n_digits(7))
    return code, draw(_n_digits(8))


@st.composite
def digital(draw):
    number = draw(_n_digits(2)) + draw(st.sampled_from(list(PROVINCES))) + draw(_n_digits(16))
    return "", number


valid_identities = st.one_of(legacy_ten(), legacy_twelve(), digital())

_SEPARATORS = [" ", "-", "\u3000", "—", "，", "。", "、", "·", "－", "\t"]


@st.composite
def typed_like_a_person(draw, text):
    """``text`` with full-width digits and separators sprinkled in, as people paste it."""
    out = [draw(st.sampled_from(["", " ", "\u3000"]))]
    for character in text:
        if draw(st.booleans()):
            character = chr(ord(character) + 0xFEE0)  # the full-width form
        out.append(character)
        if draw(st.integers(0, 4)) == 0:
            out.append(draw(st.sampled_from(_SEPARATORS)))
    return "".join(out)


@PROPERTIES
@given(data=st.data(), code_number=valid_identities)
def test_valid_identities_survive_normalise_key_parse(data, code_number):
    code, number = code_number
    typed = parse_identity(
        data.draw(typed_like_a_person(code)), data.draw(typed_like_a_person(number))
    )
    assert (typed.code, typed.number) == (code, number)
    again = parse_key(typed.key)
    assert again == typed
    assert (again.kind, again.year, again.region, again.is_beijing) == (
        typed.kind,
        typed.year,
        typed.region,
        typed.is_beijing,
    )


@PROPERTIES
@given(code=st.one_of(st.none(), st.text()), number=st.one_of(st.none(), st.text()))
def test_arbitrary_text_raises_only_rule_errors(code, number):
    try:
        identity = parse_identity(code, number)
    except InvoiceRuleError as error:
        assert error.message("en") and error.message("zh_CN")
    else:
        assert isinstance(identity, InvoiceIdentity)


@PROPERTIES
@given(key=st.text())
def test_arbitrary_keys_raise_only_rule_errors(key):
    try:
        parse_key(key)
    except InvoiceRuleError as error:
        assert error.message("en")


def test_a_qingdao_digital_invoice_names_its_planned_city():
    # The real Qingdao sample's number: digits 3-4 are Qingdao's own bureau code, not a province.
    identity = parse_identity("", "24922000000078112547")
    assert (identity.region_code, identity.region_name) == ("92", "青岛")
    assert identity.region.known
    assert not identity.is_beijing


@pytest.mark.parametrize("bureau", ["99", "93", "00"])
def test_an_unknown_digital_bureau_code_is_a_valid_invoice_of_an_unknown_region(bureau):
    identity = parse_identity("", f"24{bureau}2000000136634917")
    assert identity.key == f"24{bureau}2000000136634917"
    assert identity.region.known is False
    assert identity.region_code == bureau
    assert not identity.is_beijing
    assert bureau in identity.region.name("zh_CN") and bureau in identity.region.name("en")
