"""Invoice QR payloads: every real string in fapiao.md §2, its variants, and precise refusals."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.errors import InvoiceRuleError
from portal.domain.identity import InvoiceKind
from portal.domain.money import AmountMeaning
from portal.domain.qr import QrLayout, QrPayload, parse_qr
from portal.domain.verification import VerificationField

PROPERTIES = settings(max_examples=200, deadline=None)

BLOCKCHAIN_SAMPLE = "01,10,153002209100,11335527,91530102MA7KNHQC36,459.00,20221102,00fe43"

# fmt: off
# text -> type, key, kind, amount, meaning, issue date, check code, token
REAL_QR = [
    ("01,10,012001900111,51142414,47.26,20190720,65431824771847114698,8BDD,",
     "10", "012001900111-51142414", InvoiceKind.E_ORDINARY, "47.26", AmountMeaning.EXCLUDING_TAX,
     date(2019, 7, 20), "65431824771847114698", "8BDD"),
    # Amount without its trailing zero; a toll invoice whose QR says type 10.
    ("01,10,042001700112,21507543,6.2,20180323,06181427187004874225,8935,",
     "10", "042001700112-21507543", InvoiceKind.TOLL, "6.20", AmountMeaning.EXCLUDING_TAX,
     date(2018, 3, 23), "06181427187004874225", "8935"),
    # No trailing comma.
    ("01,10,037021700211,27209635,227.18,20181022,15842564450878415553,C4AA",
     "10", "037021700211-27209635", InvoiceKind.E_ORDINARY, "227.18",
     AmountMeaning.EXCLUDING_TAX, date(2018, 10, 22), "15842564450878415553", "C4AA"),
    # 数电票: empty code and check code; the amount is the total including tax.
    ("01,32,,25447000001115703415,50.00,20250923,,0CA3",
     "32", "25447000001115703415", InvoiceKind.DIGITAL_ORDINARY, "50.00", AmountMeaning.TOTAL,
     date(2025, 9, 23), None, "0CA3"),
    ("01,32,,24312000000136634917,0.01,20240514,,1DD6",
     "32", "24312000000136634917", InvoiceKind.DIGITAL_ORDINARY, "0.01", AmountMeaning.TOTAL,
     date(2024, 5, 14), None, "1DD6"),
    # Blockchain layout, as far as fapiao.md prints it (the check code is cut off there).
    (BLOCKCHAIN_SAMPLE,
     "10", "153002209100-11335527", InvoiceKind.E_ORDINARY, "459.00",
     AmountMeaning.EXCLUDING_TAX, date(2022, 11, 2), "00fe43", None),
]
# fmt: on


@pytest.mark.parametrize(
    ("text", "type_code", "key", "kind", "amount", "meaning", "issue_date", "check_code", "token"),
    REAL_QR,
)
def test_real_qr_codes(text, type_code, key, kind, amount, meaning, issue_date, check_code, token):
    payload = parse_qr(text)
    assert payload.type_code == type_code
    assert payload.identity.key == key
    assert payload.identity.kind is kind
    assert payload.amount == Decimal(amount)
    assert str(payload.amount) == amount
    assert payload.amount_meaning is meaning
    assert payload.issue_date == issue_date
    assert payload.check_code == check_code
    assert payload.token == token


def test_legacy_amounts_exclude_tax_and_digital_amounts_include_it():
    legacy = parse_qr(REAL_QR[0][0])
    digital = parse_qr(REAL_QR[3][0])
    assert (legacy.amount_excluding_tax, legacy.total) == (Decimal("47.26"), None)
    assert (digital.amount_excluding_tax, digital.total) == (None, Decimal("50.00"))


def test_blockchain_layout_carries_the_sellers_tax_id():
    payload = parse_qr(BLOCKCHAIN_SAMPLE)
    assert payload.layout is QrLayout.BLOCKCHAIN
    assert str(payload.seller_tax_id) == "91530102MA7KNHQC36"
    assert payload.identity.is_blockchain
    with_token = parse_qr(BLOCKCHAIN_SAMPLE + ",ABCD,")
    assert (with_token.token, with_token.check_code) == ("ABCD", "00fe43")


def test_standard_layout_has_no_seller_tax_id():
    payload = parse_qr(REAL_QR[0][0])
    assert (payload.layout, payload.seller_tax_id) == (QrLayout.STANDARD, None)


def test_trailing_comma_makes_no_difference():
    text = REAL_QR[2][0]
    assert parse_qr(text) == parse_qr(text + ",")


def test_full_width_commas_and_surrounding_whitespace_are_tolerated():
    assert parse_qr("  " + REAL_QR[3][0].replace(",", "，") + "\n") == parse_qr(REAL_QR[3][0])


def test_red_letter_invoices_have_negative_amounts():
    payload = parse_qr("01,04,011001600204,12345678,-100.00,20240101,12345678901234567890,ABCD")
    assert payload.amount == Decimal("-100.00")


def test_special_invoice_qr_without_check_code():
    payload = parse_qr("01,01,1100194130,00012345,1000.00,20240301,,ABCD")
    assert payload.check_code is None
    query = payload.lookup_query()
    assert query.supplied_fields == (VerificationField.ISSUE_DATE, VerificationField.AMOUNT)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (
            REAL_QR[0][0],
            {
                "issue_date": date(2019, 7, 20),
                "amount": Decimal("47.26"),
                "check_code_last6": "114698",
            },
        ),
        (REAL_QR[3][0], {"issue_date": date(2025, 9, 23), "total": Decimal("50.00")}),
    ],
)
def test_lookup_query_carries_what_the_qr_claims(text, fields):
    query = parse_qr(text).lookup_query()
    assert {f.value: query.value(f) for f in query.supplied_fields} == fields


def test_lookup_query_needs_what_verification_needs():
    # A 普票 QR without its check code cannot be looked up.
    payload = parse_qr("01,10,011001600211,12345678,10.00,20240101,,ABCD")
    with pytest.raises(InvoiceRuleError) as caught:
        payload.lookup_query()
    assert (caught.value.code, caught.value.field) == ("required", "check_code_last6")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "qr_empty"),
        ("   ", "qr_empty"),
        (None, "qr_empty"),
        ("https://example.com/invoice/1", "qr_version"),
        ("02,10,012001900111,51142414,47.26,20190720,65431824771847114698,8BDD", "qr_version"),
        ("01,10,012001900111,51142414,47.26,20190720", "qr_field_count"),
        (
            "01,10,012001900111,51142414,47.26,20190720,65431824771847114698,8BDD,,",
            "qr_field_count",
        ),
        ("01,10,012001900111,51142414,47.26,20190720,6543182477,8BDD,XX,YY", "qr_field_count"),
        ("01", "qr_field_count"),
        ("01,99,012001900111,51142414,47.26,20190720,65431824771847114698,8BDD", "qr_type_unknown"),
        (
            "01,32,012001900111,51142414,47.26,20190720,65431824771847114698,8BDD",
            "qr_type_mismatch",
        ),
        ("01,10,,24312000000136634917,0.01,20240514,,1DD6", "qr_type_mismatch"),
        (
            "01,10,053002209111,11335527,91530102MA7KNHQC36,459.00,20221102,00fe43",
            "qr_layout_mismatch",
        ),
        (
            "01,10,153002209100,11335527,459.00,20221102,65431824771847114698,8BDD",
            "qr_layout_mismatch",
        ),
        (
            "01,32,,24312000000136634917,0.01,20240514,65431824771847114698,1DD6",
            "qr_digital_check_code",
        ),
        # fapiao.md prints the blockchain sample with an ellipsis; that is not a check code.
        ("01,10,153002209100,11335527,91530102MA7KNHQC36,459.00,20221102,00fe43…", "qr_check_code"),
        ("01,10,012001900111,51142414,47.26,20190720,65431824771847114698,8BD-X", "qr_token"),
        ("01,10,012001900111,51142414,47.26,20190720,65431824771847114698,<b>", "qr_token"),
        (
            "01,10,012001900111,51142414,47.26,20190720,65431824771847114698,ABCDEFGHIJKLMNOPQ",
            "qr_token",
        ),
        ("01,32,,24312000000136634917,0.01,20240514,1DD6 X", "qr_token"),
        ("01,32,,24312000000136634917,0.01,2024/05/14,,1DD6", "date_format"),
        ("01,10,012001900111,51142414,47.26,2019072,65431824771847114698,8BDD", "date_format"),
        ("01,10,012001900111,51142414,47.26,2019.07.20,65431824771847114698,8BDD", "date_format"),
        ("01,10,012001900111,51142414,47.26,2019-7-20,65431824771847114698,8BDD", "date_format"),
        ("01,10,012001900111,51142414,47.26,20190230,65431824771847114698,8BDD", "date_invalid"),
        ("01,10,012001900111,51142414,47.2.6,20190720,65431824771847114698,8BDD", "money_format"),
        (
            "01,10,012001900111,51142414,47.266,20190720,65431824771847114698,8BDD",
            "money_precision",
        ),
        (
            "01,10,012001900111,51142414,47.26,20190720,6543182477184711469,8BDD",
            "check_code_length",
        ),
        ("01,10,01200190011,51142414,47.26,20190720,65431824771847114698,8BDD", "code_length"),
        ("01,10,012001900111,5114241,47.26,20190720,65431824771847114698,8BDD", "number_length"),
        ("01,10,153002209100,11335527,91530102MA7KNHQC37,459.00,20221102,00fe43", "tax_id_check"),
    ],
)
def test_refusals_say_precisely_why(text, code):
    with pytest.raises(InvoiceRuleError) as caught:
        parse_qr(text)
    assert caught.value.code == code
    assert caught.value.message() and caught.value.message("en")


def test_check_code_field_names_the_check_code():
    with pytest.raises(InvoiceRuleError) as caught:
        parse_qr("01,32,,24312000000136634917,0.01,20240514,65431824771847114698,1DD6")
    assert caught.value.field == "check_code"


# --- properties -------------------------------------------------------------------------------

_digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def _n_digits(n):
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@st.composite
def legacy_qr(draw):
    """A standard-layout QR of a legacy e-普票, with the fields it was built from."""
    code = "0" + draw(st.sampled_from(["1100", "3100", "4403"])) + draw(_n_digits(5)) + "11"
    number = draw(_n_digits(8))
    cents = draw(st.integers(0, 10**9))
    amount = Decimal(cents).scaleb(-2)
    # The QR drops trailing zeros of the amount.
    amount_text = format(amount.normalize(), "f") if cents else "0"
    issue_date = draw(st.dates(min_value=date(2017, 1, 1), max_value=date(2030, 12, 31)))
    check_code = draw(_n_digits(20))
    token = draw(st.text(alphabet="0123456789ABCDEF", min_size=4, max_size=4))
    trailing = draw(st.sampled_from(["", ","]))
    text = f"01,10,{code},{number},{amount_text},{issue_date:%Y%m%d},{check_code},{token}{trailing}"
    return text, (f"{code}-{number}", amount, issue_date, check_code, token)


@PROPERTIES
@given(sample=legacy_qr())
def test_generated_qr_codes_parse_to_their_fields(sample):
    text, (key, amount, issue_date, check_code, token) = sample
    payload = parse_qr(text)
    assert isinstance(payload, QrPayload)
    assert (
        payload.identity.key,
        payload.amount,
        payload.issue_date,
        payload.check_code,
        payload.token,
    ) == (key, amount, issue_date, check_code, token)


_field = st.text(alphabet=st.sampled_from("0123456789ABCDEFabcdef.,-， "), max_size=24)


@PROPERTIES
@given(
    text=st.one_of(
        st.text(),
        st.lists(_field, min_size=1, max_size=10).map(lambda parts: "01," + ",".join(parts)),
    )
)
def test_arbitrary_text_raises_only_rule_errors(text):
    try:
        parse_qr(text)
    except InvoiceRuleError as error:
        assert error.message("en") and error.message("zh_CN")


# Variants seen on real invoices (issue 18): tokens of other shapes, seven fields, dashed dates.
@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("01,10,012001900111,51142414,47.26,20190720,65431824771847114698,41758,", "41758"),
        ("01,10,012001900111,51142414,47.26,20190720,65431824771847114698,758", "758"),
        ("01,32,,24312000000136634917,0.01,20240514,,C16,", "C16"),
        ("01,32,,24312000000136634917,0.01,20240514,,c16a", "c16a"),
    ],
)
def test_real_tokens_of_every_shape(text, token):
    assert parse_qr(text).token == token


@pytest.mark.parametrize(
    ("text", "check_code", "token"),
    [
        # 2025 ride-hailing 数电票: seven fields, a dashed date, no check code field.
        ("01,32,,25312000000123456789,31.50,2025-03-25,A1B2", None, "A1B2"),
        ("01,32,,25312000000123456789,31.50,2025-03-25,A1B2,", None, "A1B2"),
        ("01,32,,25312000000123456789,31.50,2025-03-25,,", None, None),
        # A legacy 普票 whose token was left out: the seventh field is its check code.
        (
            "01,10,012001900111,51142414,47.26,20190720,65431824771847114698",
            "65431824771847114698",
            None,
        ),
        (
            "01,10,012001900111,51142414,47.26,20190720,65431824771847114698,",
            "65431824771847114698",
            None,
        ),
    ],
)
def test_seven_field_payloads(text, check_code, token):
    payload = parse_qr(text)
    assert (payload.check_code, payload.token) == (check_code, token)
    assert payload.layout is QrLayout.STANDARD


def test_dashed_dates_mean_the_same_day():
    dashed = parse_qr("01,32,,25312000000123456789,31.50,2025-03-25,,A1B2")
    compact = parse_qr("01,32,,25312000000123456789,31.50,20250325,,A1B2")
    assert dashed.issue_date == compact.issue_date == date(2025, 3, 25)
    assert dashed.total == Decimal("31.50")


def test_a_qingdao_digital_qr_is_readable():
    # The real Qingdao sample's QR code, refused as region_unknown before issue 18.
    payload = parse_qr("01,32,,24922000000078112547,214.00,20241228,,A176")
    assert payload.identity.region.name_zh == "青岛"
    assert payload.total == Decimal("214.00")


def test_a_digital_qr_of_an_unknown_bureau_is_readable_with_its_region_unknown():
    payload = parse_qr("01,32,,24972000000078112547,214.00,20241228,,A176")
    assert payload.identity.region.known is False
    assert not payload.identity.is_beijing
