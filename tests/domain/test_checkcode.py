"""校验码: 20 digits however they were grouped, and the last 6 that verification asks for."""

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.checkcode import (
    format_check_code,
    parse_check_code,
    parse_check_code_last6,
)
from portal.domain.errors import InvoiceRuleError

PROPERTIES = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize(
    "text",
    [
        "65431824771847114698",
        "65431 82477 18471 14698",
        "６５４３１　８２４７７　１８４７１　１４６９８",
        "65431-82477-18471-14698",
    ],
)
def test_check_codes_as_printed_and_typed(text):
    assert parse_check_code(text) == "65431824771847114698"


@pytest.mark.parametrize(
    ("text", "last6"),
    [
        ("874225", "874225"),
        ("87 42 25", "874225"),
        ("06181427187004874225", "874225"),
        ("06181 42718 70048 74225", "874225"),
        ("０００１２３", "000123"),
    ],
)
def test_last6_accepts_six_digits_or_the_whole_code(text, last6):
    assert parse_check_code_last6(text) == last6


@pytest.mark.parametrize(
    ("parse", "text", "code", "params"),
    [
        (parse_check_code, "", "required", {"field": "check_code"}),
        (parse_check_code, None, "required", {"field": "check_code"}),
        (parse_check_code, "6543182477184711469", "check_code_length", {"length": 19}),
        (parse_check_code, "6543182477184711469X", "not_digits", {"char": "X"}),
        (parse_check_code_last6, "", "required", {"field": "check_code_last6"}),
        (parse_check_code_last6, "87422", "check_code_last6_length", {"length": 5}),
        (parse_check_code_last6, "8742251", "check_code_last6_length", {"length": 7}),
        (parse_check_code_last6, "87422a", "not_digits", {"char": "a"}),
        (parse_check_code_last6, 874225, "not_text", {"field": "check_code_last6"}),
    ],
)
def test_refusals(parse, text, code, params):
    with pytest.raises(InvoiceRuleError) as caught:
        parse(text)
    assert caught.value.code == code
    assert params.items() <= caught.value.params.items()


def test_format_groups_of_five():
    assert format_check_code("65431824771847114698") == "65431 82477 18471 14698"


@PROPERTIES
@given(st.text(alphabet="0123456789", min_size=20, max_size=20))
def test_format_then_parse_round_trips(check_code):
    assert parse_check_code(format_check_code(check_code)) == check_code
    assert parse_check_code_last6(check_code) == check_code[-6:]


@PROPERTIES
@given(st.text())
def test_arbitrary_text_raises_only_rule_errors(text):
    for parse in (parse_check_code, parse_check_code_last6):
        with contextlib.suppress(InvoiceRuleError):
            parse(text)
