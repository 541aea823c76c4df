"""Money as people type it, exact to the fen; totals add up; tax is plausible for its rate."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.errors import InvoiceRuleError
from portal.domain.money import (
    CENT,
    VAT_RATES,
    AmountMeaning,
    check_totals,
    format_money,
    parse_money,
    tax_plausible,
)

PROPERTIES = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize(
    ("typed", "amount"),
    [
        ("1234.56", "1234.56"),
        ("¥1,234.56", "1234.56"),
        ("￥1,234.5", "1234.50"),
        ("1234元", "1234.00"),
        ("１２３４．５０", "1234.50"),
        ("１，２３４．５６元", "1234.56"),
        (" ¥ 1 234.00 ", "1234.00"),
        ("6.2", "6.20"),
        ("0.01", "0.01"),
        ("1.500", "1.50"),
        ("0", "0.00"),
        ("-0", "0.00"),
        ("1,000,000", "1000000.00"),
        ("000123", "123.00"),
        (Decimal("47.17"), "47.17"),
        (Decimal("5"), "5.00"),
        (12, "12.00"),
    ],
)
def test_what_people_type(typed, amount):
    parsed = parse_money(typed)
    assert parsed == Decimal(amount)
    assert str(parsed) == amount


@pytest.mark.parametrize("typed", ["-5", "-¥5", "¥-5", "\u22125", "－５"])
def test_negative_amounts_only_when_allowed(typed):
    assert parse_money(typed, allow_negative=True) == Decimal("-5.00")
    with pytest.raises(InvoiceRuleError) as caught:
        parse_money(typed)
    assert caught.value.code == "money_negative"


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "required"),
        (None, "required"),
        ("  ", "required"),
        ("12,34", "money_format"),
        ("1,2345", "money_format"),
        ("1.", "money_format"),
        (".5", "money_format"),
        ("1e5", "money_format"),
        ("NaN", "money_format"),
        ("--5", "money_format"),
        ("¥¥5", "money_format"),
        ("壹佰元", "money_format"),
        ("٣", "money_format"),
        ("1.234", "money_precision"),
        ("1.001", "money_precision"),
        ("1234567890123", "money_too_large"),
        (Decimal("NaN"), "money_format"),
        (Decimal("Infinity"), "money_format"),
        (Decimal("1E+20"), "money_too_large"),
        (Decimal("0.001"), "money_precision"),
        (0.1, "money_float"),
        (True, "not_text"),
        ([1], "not_text"),
    ],
)
def test_refusals_say_precisely_why(typed, code):
    with pytest.raises(InvoiceRuleError) as caught:
        parse_money(typed, field="total")
    assert caught.value.code == code
    assert caught.value.field == "total"
    assert caught.value.message("en") and caught.value.message("zh_CN")


def test_refusal_quotes_what_was_typed_but_not_all_of_it():
    with pytest.raises(InvoiceRuleError) as caught:
        parse_money("x" * 500)
    assert len(str(caught.value.params["text"])) == 40


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("1234.56", "¥1,234.56"),
        ("1234.5", "¥1,234.50"),
        ("0", "¥0.00"),
        ("-5", "-¥5.00"),
        ("1000000", "¥1,000,000.00"),
    ],
)
def test_format_money(amount, shown):
    assert format_money(Decimal(amount)) == shown


def test_the_vat_rate_set():
    assert {
        Decimal("0.13"),
        Decimal("0.09"),
        Decimal("0.06"),
        Decimal("0.05"),
        Decimal("0.03"),
        Decimal("0.02"),
        Decimal("0.015"),
        Decimal("0.01"),
        Decimal("0"),
    } == VAT_RATES


def test_amount_meanings_are_the_verification_field_names():
    assert (AmountMeaning.EXCLUDING_TAX.value, AmountMeaning.TOTAL.value) == ("amount", "total")


def test_totals_add_up():
    # The 数电票 sample: amount 47.17 + tax 2.83, the QR says 50.00.
    check_totals(Decimal("47.17"), Decimal("2.83"), Decimal("50.00"))
    with pytest.raises(InvoiceRuleError) as caught:
        check_totals(Decimal("47.17"), Decimal("2.83"), Decimal("50.01"))
    assert caught.value.code == "totals_mismatch"
    assert "50.01" in caught.value.message("en")


@pytest.mark.parametrize(
    ("amount", "tax", "rate", "lines", "plausible"),
    [
        ("47.17", "2.83", "0.06", 1, True),  # the 数电票 sample
        ("47.17", "2.84", "0.06", 1, False),
        ("100.00", "13.00", "0.13", 1, True),
        ("100.00", "13.01", "0.13", 1, False),
        ("100.00", "13.02", "0.13", 4, True),  # rounding on four lines
        ("100.00", "13.05", "0.13", 4, False),
        ("100.00", "0.00", "0", 1, True),  # exempt
        ("100.00", "1.50", "0.015", 1, True),
    ],
)
def test_tax_plausible(amount, tax, rate, lines, plausible):
    assert tax_plausible(Decimal(amount), Decimal(tax), Decimal(rate), lines=lines) is plausible


def test_tax_plausible_needs_a_real_rate_and_lines():
    with pytest.raises(InvoiceRuleError) as caught:
        tax_plausible(Decimal("100"), Decimal("17"), Decimal("0.17"))
    assert (caught.value.code, caught.value.params["rate"]) == ("vat_rate_unknown", "0.17")
    with pytest.raises(InvoiceRuleError) as caught:
        tax_plausible(Decimal("100"), Decimal("13"), Decimal("0.13"), lines=0)
    assert caught.value.code == "tax_lines_invalid"


# --- properties -------------------------------------------------------------------------------

amounts = st.integers(-(10**12) + 1, 10**12 - 1).map(lambda cents: Decimal(cents) * CENT)


@PROPERTIES
@given(amount=amounts)
def test_format_then_parse_round_trips(amount):
    assert parse_money(format_money(amount), allow_negative=True) == amount


@PROPERTIES
@given(
    line_amounts=st.lists(
        st.integers(1, 10**9).map(lambda c: Decimal(c) * CENT), min_size=1, max_size=30
    ),
    rate=st.sampled_from(sorted(VAT_RATES)),
)
def test_tax_rounded_per_line_is_plausible(line_amounts, rate):
    tax = sum((line * rate).quantize(CENT) for line in line_amounts)
    assert tax_plausible(sum(line_amounts), tax, rate, lines=len(line_amounts))


@PROPERTIES
@given(
    line_totals=st.lists(
        st.integers(1, 10**9).map(lambda c: Decimal(c) * CENT), min_size=1, max_size=30
    ),
    rate=st.sampled_from(sorted(VAT_RATES)),
)
def test_tax_from_tax_inclusive_prices_is_plausible(line_totals, rate):
    # Issuers pricing tax-inclusive round each line's tax and derive its amount from it.
    taxes = [(total * rate / (1 + rate)).quantize(CENT) for total in line_totals]
    amount = sum(total - tax for total, tax in zip(line_totals, taxes, strict=True))
    assert tax_plausible(amount, sum(taxes), rate, lines=len(line_totals))


@PROPERTIES
@given(text=st.one_of(st.text(), st.text(alphabet="0123456789,.¥￥元- ")))
def test_arbitrary_text_raises_only_rule_errors(text):
    try:
        amount = parse_money(text, allow_negative=True)
    except InvoiceRuleError as error:
        assert error.message("en")
    else:
        assert amount == amount.quantize(CENT)
