"""What a lookup needs for each kind (fapiao.md §3), and building one from form or API values."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.errors import InvoiceRuleError
from portal.domain.identity import InvoiceKind, parse_identity, parse_key
from portal.domain.verification import (
    LookupQuery,
    VerificationField,
    build_lookup_query,
    parse_issue_date,
    required_fields,
)

PROPERTIES = settings(max_examples=200, deadline=None)

DATE, AMOUNT, TOTAL, LAST6 = (
    VerificationField.ISSUE_DATE,
    VerificationField.AMOUNT,
    VerificationField.TOTAL,
    VerificationField.CHECK_CODE_LAST6,
)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (InvoiceKind.SPECIAL, (DATE, AMOUNT)),  # 01
        (InvoiceKind.E_SPECIAL, (DATE, AMOUNT)),  # 08
        (InvoiceKind.FREIGHT_SPECIAL, (DATE, TOTAL)),  # 02
        (InvoiceKind.ORDINARY, (DATE, LAST6)),  # 04
        (InvoiceKind.E_ORDINARY, (DATE, LAST6)),  # 10
        (InvoiceKind.ROLL, (DATE, LAST6)),  # 11
        (InvoiceKind.TOLL, (DATE, LAST6)),  # 14
        (InvoiceKind.DIGITAL_SPECIAL, (DATE, TOTAL)),  # 31
        (InvoiceKind.DIGITAL_ORDINARY, (DATE, TOTAL)),  # 32
        (InvoiceKind.DIGITAL, (DATE, TOTAL)),
    ],
)
def test_required_fields_per_kind(kind, fields):
    assert required_fields(kind) == fields


@pytest.mark.parametrize(
    ("key", "fields"),
    [
        ("1100194130-00012345", ("issue_date", "amount")),
        ("042001700112-21507543", ("issue_date", "check_code_last6")),
        ("25447000001115703415", ("issue_date", "total")),
    ],
)
def test_required_fields_of_an_identity_are_form_field_names(key, fields):
    assert required_fields(parse_key(key)) == fields


@pytest.mark.parametrize(
    "typed",
    [
        "2024-05-14",
        "2024/5/14",
        "2024.05.14",
        "20240514",
        "2024年5月14日",
        "2024年05月14",
        "２０２４－０５－１４",
        " 2024 - 05 - 14 ",
        date(2024, 5, 14),
    ],
)
def test_issue_dates_as_people_type_them(typed):
    assert parse_issue_date(typed) == date(2024, 5, 14)


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "required"),
        (None, "required"),
        ("14/05/2024", "date_format"),
        ("May 14, 2024", "date_format"),
        ("2024-5", "date_format"),
        ("2024-02-30", "date_invalid"),
        ("20241314", "date_invalid"),
        ("0000-01-01", "date_invalid"),
        (datetime(2024, 5, 14, 10, 0), "not_text"),
        (20240514, "not_text"),
    ],
)
def test_issue_date_refusals(typed, code):
    with pytest.raises(InvoiceRuleError) as caught:
        parse_issue_date(typed)
    assert (caught.value.code, caught.value.field) == (code, "issue_date")


def test_build_lookup_for_a_special_invoice():
    query = build_lookup_query(
        {
            "code": "1100194130",
            "number": "00012345",
            "issue_date": "2024-03-01",
            "amount": "¥1,000.00",
            "total": "",
            "check_code_last6": None,
            "csrf_token": "x",
        }
    )
    assert query.identity.key == "1100194130-00012345"
    assert (query.issue_date, query.amount, query.total, query.check_code_last6) == (
        date(2024, 3, 1),
        Decimal("1000.00"),
        None,
        None,
    )
    assert query.supplied_fields == (DATE, AMOUNT)


def test_build_lookup_for_a_digital_invoice_and_an_ordinary_one():
    digital = build_lookup_query(
        {"number": "25447000001115703415", "issue_date": "20250923", "total": "50"}
    )
    assert (digital.total, digital.value(TOTAL)) == (Decimal("50.00"), Decimal("50.00"))
    ordinary = build_lookup_query(
        {
            "code": "042001700112",
            "number": "21507543",
            "issue_date": "2018-03-23",
            "check_code_last6": "06181 42718 70048 74225",
        }
    )
    assert ordinary.check_code_last6 == "874225"


def test_extra_fields_are_kept_for_diagnosis():
    query = build_lookup_query(
        {
            "code": "042001700112",
            "number": "21507543",
            "issue_date": "2018-03-23",
            "check_code_last6": "874225",
            "amount": "6.2",
        }
    )
    assert query.supplied_fields == (DATE, AMOUNT, LAST6)


@pytest.mark.parametrize(
    ("values", "code", "field"),
    [
        (
            {"code": "1100194130", "number": "00012345", "issue_date": "2024-03-01"},
            "required",
            "amount",
        ),
        ({"number": "25447000001115703415", "total": "50"}, "required", "issue_date"),
        (
            {"number": "25447000001115703415", "issue_date": "2025-09-23", "total": "5O"},
            "money_format",
            "total",
        ),
        (
            {"number": "25447000001115703415", "issue_date": "2025-09-23", "total": "-5"},
            "money_negative",
            "total",
        ),
        (
            {
                "code": "042001700112",
                "number": "21507543",
                "issue_date": "2018-03-23",
                "check_code_last6": "74225",
            },
            "check_code_last6_length",
            "check_code_last6",
        ),
        ({"code": "0420017001", "number": "21507543"}, "code_shape", "code"),
        ({"code": 42001700112, "number": "21507543"}, "not_text", "code"),
    ],
)
def test_build_lookup_refusals_name_the_field(values, code, field):
    with pytest.raises(InvoiceRuleError) as caught:
        build_lookup_query(values)
    assert (caught.value.code, caught.value.field) == (code, field)


def test_a_lookup_query_cannot_exist_without_its_required_fields():
    identity = parse_identity("042001700112", "21507543")
    with pytest.raises(InvoiceRuleError) as caught:
        LookupQuery(identity=identity, issue_date=date(2018, 3, 23), amount=Decimal("6.20"))
    assert (caught.value.code, caught.value.field) == ("required", "check_code_last6")


@PROPERTIES
@given(
    values=st.dictionaries(
        st.sampled_from(["code", "number", "issue_date", "amount", "total", "check_code_last6"]),
        st.one_of(st.none(), st.text(), st.text(alphabet="0123456789-. ", max_size=22)),
    )
)
def test_arbitrary_form_values_raise_only_rule_errors(values):
    try:
        build_lookup_query(values)
    except InvoiceRuleError as error:
        assert error.field is not None
        assert error.message("en")


def test_issue_dates_from_2000_to_tomorrow_are_plausible():
    from datetime import date

    from portal.domain import EARLIEST_ISSUE_DATE, check_issue_date_range

    today = date(2026, 5, 1)
    assert check_issue_date_range(EARLIEST_ISSUE_DATE, today) == date(2000, 1, 1)
    assert check_issue_date_range(date(2026, 5, 2), today) == date(2026, 5, 2)
    for far in (date(1, 1, 1), date(1999, 12, 31), date(2026, 5, 3), date(9999, 12, 31)):
        with pytest.raises(InvoiceRuleError) as refused:
            check_issue_date_range(far, today)
        assert refused.value.code == "date_out_of_range"
        assert refused.value.field == "issue_date"
        assert "2000-01-01" in refused.value.message("zh_CN")
        assert "2026-05-02" in refused.value.message("en")
