"""统一社会信用代码 (GB 32100-2015) with its check character, and legacy 15-character IDs."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.errors import InvoiceRuleError
from portal.domain.taxid import (
    USCC_ALPHABET,
    USCC_WEIGHTS,
    TaxIdForm,
    is_valid_taxpayer_id,
    parse_taxpayer_id,
    uscc_check_character,
)

PROPERTIES = settings(max_examples=200, deadline=None)


def test_weights_are_the_ones_the_standard_lists():
    assert USCC_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    assert len(USCC_ALPHABET) == 31
    assert not set("IOZSV") & set(USCC_ALPHABET)


@pytest.mark.parametrize(
    ("text", "division"),
    [
        ("91320621MA1MRHG205", "320621"),
        ("911101017967003199", "110101"),  # Beijing
        ("91440106068698695J", "440106"),
        # The blockchain QR sample's seller.
        ("91530102MA7KNHQC36", "530102"),
    ],
)
def test_known_valid_codes(text, division):
    tax_id = parse_taxpayer_id(text)
    assert (tax_id.value, tax_id.form, tax_id.is_legacy) == (text, TaxIdForm.UNIFIED, False)
    assert tax_id.division_code == division
    assert str(tax_id) == text
    assert is_valid_taxpayer_id(text)


def test_known_invalid_code_fails_its_check():
    with pytest.raises(InvoiceRuleError) as caught:
        parse_taxpayer_id("91320621MA1MRHG207")
    assert caught.value.code == "tax_id_check"
    assert not is_valid_taxpayer_id("91320621MA1MRHG207")


@pytest.mark.parametrize(
    "text",
    [
        "91440106068698695j",
        "９１４４０１０６０６８６９８６９５Ｊ",
        "9144 0106 0686 9869 5J",
        "914401-060686-98695J",
    ],
)
def test_typed_forms(text):
    assert parse_taxpayer_id(text).value == "91440106068698695J"


def test_legacy_fifteen_character_ids_are_accepted_unchecked():
    tax_id = parse_taxpayer_id("110108802100017")
    assert (tax_id.form, tax_id.is_legacy, tax_id.division_code) == (
        TaxIdForm.LEGACY,
        True,
        "110108",
    )
    assert parse_taxpayer_id("11010810210001X").is_legacy


@pytest.mark.parametrize(
    ("text", "code", "params"),
    [
        ("", "required", {}),
        ("9132062", "tax_id_length", {"length": 7}),
        ("91320621MA1MRHG2055", "tax_id_length", {"length": 19}),
        ("91320621MA1MRHGI05", "tax_id_character", {"position": 16, "char": "I"}),
        ("O1320621MA1MRHG205", "tax_id_character", {"position": 1, "char": "O"}),
        ("91320621MA1MRHG20*", "tax_id_character", {"position": 18, "char": "*"}),
        ("9132A621MA1MRHG205", "tax_id_division", {"position": 5, "char": "A"}),
        ("91320621MA1MRHG207", "tax_id_check", {}),
        ("11010880210001Y", "tax_id_legacy_shape", {}),
        ("1101A8802100017", "tax_id_legacy_shape", {}),
    ],
)
def test_refusals_say_precisely_why(text, code, params):
    with pytest.raises(InvoiceRuleError) as caught:
        parse_taxpayer_id(text)
    assert caught.value.code == code
    assert caught.value.field == "tax_id"
    assert params.items() <= caught.value.params.items()
    assert caught.value.message("en") and caught.value.message("zh_CN")


def test_check_character_needs_seventeen_valid_characters():
    assert uscc_check_character("91320621MA1MRHG20") == "5"
    with pytest.raises(InvoiceRuleError) as caught:
        uscc_check_character("9132")
    assert caught.value.code == "tax_id_length"
    with pytest.raises(InvoiceRuleError) as caught:
        uscc_check_character("91320621MA1MRHGI0")
    assert caught.value.code == "tax_id_character"


# --- properties -------------------------------------------------------------------------------

_symbol = st.sampled_from(USCC_ALPHABET)


@st.composite
def unified_codes(draw):
    first17 = (
        "".join(draw(st.lists(_symbol, min_size=2, max_size=2)))
        + draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
        + "".join(draw(st.lists(_symbol, min_size=9, max_size=9)))
    )
    return first17 + uscc_check_character(first17)


@PROPERTIES
@given(code=unified_codes())
def test_generated_codes_validate(code):
    assert parse_taxpayer_id(code).value == code


@PROPERTIES
@given(code=unified_codes(), position=st.integers(0, 17), replacement=_symbol)
def test_any_single_character_change_is_caught(code, position, replacement):
    if code[position] == replacement:
        replacement = USCC_ALPHABET[(USCC_ALPHABET.index(replacement) + 1) % 31]
    changed = code[:position] + replacement + code[position + 1 :]
    assert not is_valid_taxpayer_id(changed)


@PROPERTIES
@given(
    text=st.one_of(st.text(), st.text(alphabet=USCC_ALPHABET + "IOZSV", min_size=18, max_size=18))
)
def test_arbitrary_text_raises_only_rule_errors(text):
    try:
        parse_taxpayer_id(text)
    except InvoiceRuleError as error:
        assert error.message("en")
