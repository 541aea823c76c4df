"""Diagnosis: why a customer's invoice is or is not found, without leaking other invoices."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.diagnosis import (
    REGISTRY_ERRORS,
    Finding,
    FindingCode,
    LedgerRecord,
    RegistryState,
    diagnose,
)
from portal.domain.errors import InvoiceRuleError
from portal.domain.identity import parse_identity, parse_key
from portal.domain.qr import parse_qr
from portal.domain.verification import LookupQuery, VerificationField

PROPERTIES = settings(max_examples=200, deadline=None)

TODAY = date(2026, 3, 10)
ISSUED = date(2026, 3, 2)
CHECK_CODE = "65431824771847114698"

SPECIAL = parse_identity("1100194130", "00012345")  # Beijing 专票: date + amount
ORDINARY = parse_identity("011001600211", "12345678")  # Beijing e-普票: date + last 6
DIGITAL = parse_key("25112000000000000001")  # Beijing 数电票: date + total

SPECIAL_LEDGER = LedgerRecord(SPECIAL.key, ISSUED, Decimal("1000.00"), Decimal("1130.00"))
ORDINARY_LEDGER = LedgerRecord(
    ORDINARY.key, ISSUED, Decimal("47.17"), Decimal("50.00"), check_code=CHECK_CODE
)
DIGITAL_LEDGER = LedgerRecord(DIGITAL.key, ISSUED, Decimal("47.17"), Decimal("50.00"))

REGISTERED = RegistryState(
    registry_id="BJ-REG-0001", registered_at=datetime(2026, 3, 2, 2, 5, tzinfo=UTC), attempts=1
)
RETRYING = RegistryState(
    attempts=3, next_attempt_at=datetime(2026, 3, 10, 6, 30, tzinfo=UTC), last_error="timeout"
)


def special(issue_date=ISSUED, amount="1000.00", **extra):
    return LookupQuery(SPECIAL, issue_date=issue_date, amount=Decimal(amount), **extra)


def ordinary(issue_date=ISSUED, last6=CHECK_CODE[-6:], **extra):
    return LookupQuery(ORDINARY, issue_date=issue_date, check_code_last6=last6, **extra)


def digital(issue_date=ISSUED, total="50.00"):
    return LookupQuery(DIGITAL, issue_date=issue_date, total=Decimal(total))


def codes(findings):
    return [finding.code for finding in findings]


# --- identity alone ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "region_code", "zh", "en"),
    [
        (
            parse_qr("01,32,,24312000000136634917,0.01,20240514,,1DD6").lookup_query(),
            "31",
            "上海",
            "Shanghai",
        ),
        (
            parse_qr(
                "01,10,037021700211,27209635,227.18,20181022,15842564450878415553,C4AA"
            ).lookup_query(),
            "3702",
            "青岛",
            "Qingdao",
        ),
    ],
)
def test_not_beijing_from_the_identity_alone(query, region_code, zh, en):
    # Even a ledger record under that key (there cannot be one) is not consulted.
    findings = diagnose(query, today=TODAY, ledger=SPECIAL_LEDGER)
    assert codes(findings) == ["not_beijing"]
    assert findings[0].params == {
        "region_code": region_code,
        "region_name": zh,
        "region_name_en": en,
    }
    assert zh in findings[0].message() and en in findings[0].message("en")


# --- not in the ledger ------------------------------------------------------------------------


def test_unknown_when_the_ledger_has_nothing():
    assert codes(diagnose(special(), today=TODAY)) == ["unknown"]


def test_issued_today_when_the_typed_date_is_today():
    findings = diagnose(special(issue_date=TODAY), today=TODAY)
    assert codes(findings) == ["issued_today"]
    assert findings[0].params == {"issue_date": "2026-03-10", "visible_from": "2026-03-11"}
    assert "2026-03-11" in findings[0].message()


def test_today_may_be_given_as_an_aware_moment_in_any_zone():
    # 17:00 UTC on 9 March is already 10 March in Shanghai.
    moment = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)
    assert codes(diagnose(special(issue_date=TODAY), today=moment)) == ["issued_today"]
    with pytest.raises(InvoiceRuleError) as caught:
        diagnose(special(), today=datetime(2026, 3, 10, 9, 0))
    assert caught.value.code == "naive_datetime"


# --- everything matched -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "ledger"),
    [(special(), SPECIAL_LEDGER), (ordinary(), ORDINARY_LEDGER), (digital(), DIGITAL_LEDGER)],
)
def test_registered(query, ledger):
    findings = diagnose(query, today=TODAY, ledger=ledger, registry=REGISTERED)
    assert codes(findings) == ["registered"]
    assert findings[0].params == {
        "registry_id": "BJ-REG-0001",
        "registered_at": "2026-03-02T10:05:00+08:00",
    }
    assert findings[0].message() == (
        "该发票已于 2026-03-02 10:05 在北京市发票登记系统登记，登记编号 BJ-REG-0001。"
    )
    assert "2026-03-02 10:05" in findings[0].message("en")


def test_pending_registry_with_retries():
    findings = diagnose(special(), today=TODAY, ledger=SPECIAL_LEDGER, registry=RETRYING)
    assert codes(findings) == ["pending_registry"]
    assert findings[0].params == {
        "attempts": 3,
        "next_attempt_at": "2026-03-10T14:30:00+08:00",
        "last_error": "timeout",
        "registry_available": True,
    }
    zh, en = findings[0].message(), findings[0].message("en")
    assert "已尝试 3 次" in zh and "2026-03-10 14:30" in zh and "响应超时" in zh
    assert "3 attempt(s)" in en and "did not answer in time" in en


def test_pending_registry_not_yet_attempted():
    findings = diagnose(special(), today=TODAY, ledger=SPECIAL_LEDGER)
    assert codes(findings) == ["pending_registry"]
    assert findings[0].params["attempts"] == 0
    assert "尚未提交" in findings[0].message()
    assert "not been sent yet" in findings[0].message("en")


def test_pending_registry_held_by_staff_during_an_outage():
    dead = RegistryState(attempts=12, last_error="unavailable")
    findings = diagnose(
        special(), today=TODAY, ledger=SPECIAL_LEDGER, registry=dead, registry_available=False
    )
    zh, en = findings[0].message(), findings[0].message("en")
    assert "工作人员正在处理" in zh and "暂时不可用，恢复后" in zh
    assert "staff are handling it" in en and "registry is down" in en


def test_a_registry_error_the_domain_does_not_know_is_not_shown_verbatim():
    state = RegistryState(attempts=1, last_error="HTTP 502 from 10.0.0.7")
    findings = diagnose(special(), today=TODAY, ledger=SPECIAL_LEDGER, registry=state)
    assert "10.0.0.7" not in findings[0].message()
    assert "登记系统返回错误" in findings[0].message()


def test_registered_without_a_recorded_time():
    state = RegistryState(registry_id="BJ-REG-0002")
    findings = diagnose(special(), today=TODAY, ledger=SPECIAL_LEDGER, registry=state)
    assert findings[0].params["registered_at"] is None
    assert "时间未记录" in findings[0].message()
    assert "unrecorded" in findings[0].message("en")


def test_issued_today_and_queued():
    ledger = LedgerRecord(SPECIAL.key, TODAY, Decimal("1000.00"), Decimal("1130.00"))
    findings = diagnose(
        special(issue_date=TODAY), today=TODAY, ledger=ledger, registry=RegistryState(attempts=1)
    )
    assert codes(findings) == ["issued_today", "pending_registry"]


def test_issued_today_but_already_registered():
    ledger = LedgerRecord(SPECIAL.key, TODAY, Decimal("1000.00"), Decimal("1130.00"))
    findings = diagnose(special(issue_date=TODAY), today=TODAY, ledger=ledger, registry=REGISTERED)
    assert codes(findings) == ["registered"]


# --- a field does not match -------------------------------------------------------------------


def test_total_typed_where_the_amount_was_asked():
    findings = diagnose(
        special(amount="1130.00"), today=TODAY, ledger=SPECIAL_LEDGER, registry=REGISTERED
    )
    assert codes(findings) == ["amount_is_total"]
    assert findings[0].params == {"field": "amount", "entered": "total"}
    assert findings[0].message() == (
        "您填写的似乎是价税合计（含税金额）。这张发票需要填写不含税金额，请改正后再查询。"
    )
    assert "entered the total including tax" in findings[0].message("en")


def test_amount_typed_where_the_total_was_asked():
    findings = diagnose(digital(total="47.17"), today=TODAY, ledger=DIGITAL_LEDGER)
    assert codes(findings) == ["amount_is_total"]
    assert findings[0].params == {"field": "total", "entered": "amount"}
    assert "entered the amount excluding tax" in findings[0].message("en")


def test_amount_is_total_only_when_everything_else_matched():
    query = special(issue_date=ISSUED + timedelta(days=1), amount="1130.00")
    assert codes(diagnose(query, today=TODAY, ledger=SPECIAL_LEDGER)) == ["unknown"]


def test_date_mismatch_once_the_amount_proved_the_invoice_is_theirs():
    findings = diagnose(special(issue_date=date(2026, 3, 3)), today=TODAY, ledger=SPECIAL_LEDGER)
    assert codes(findings) == ["date_mismatch"]
    assert findings[0].params == {"field": "issue_date"}


def test_date_mismatch_once_the_check_code_proved_it():
    findings = diagnose(ordinary(issue_date=date(2026, 3, 3)), today=TODAY, ledger=ORDINARY_LEDGER)
    assert codes(findings) == ["date_mismatch"]


def test_a_wrong_amount_with_the_right_date_proves_nothing():
    # Dates are guessable; confirming one would let anyone probe which invoices exist.
    query = special(amount="999.00")
    assert diagnose(query, today=TODAY, ledger=SPECIAL_LEDGER) == diagnose(query, today=TODAY)


def test_a_wrong_check_code_with_the_right_date_proves_nothing():
    query = ordinary(last6="000000")
    assert codes(diagnose(query, today=TODAY, ledger=ORDINARY_LEDGER)) == ["unknown"]


def test_first_six_digits_of_the_check_code_instead_of_the_last_six():
    findings = diagnose(ordinary(last6=CHECK_CODE[:6]), today=TODAY, ledger=ORDINARY_LEDGER)
    assert codes(findings) == ["check_code_mismatch"]
    assert findings[0].params == {"field": "check_code_last6"}
    assert "最后 6 位" in findings[0].message()


def test_check_code_mismatch_when_an_uploaded_amount_proved_it():
    query = ordinary(last6="000000", amount=Decimal("47.17"))
    assert codes(diagnose(query, today=TODAY, ledger=ORDINARY_LEDGER)) == ["check_code_mismatch"]


def test_amount_mismatch_when_the_check_code_proved_it():
    query = ordinary(amount=Decimal("47.71"))
    findings = diagnose(query, today=TODAY, ledger=ORDINARY_LEDGER)
    assert codes(findings) == ["amount_mismatch"]
    assert findings[0].params == {"field": "amount"}
    assert "不含税金额与我们的记录不一致" in findings[0].message()


def test_a_ledger_row_without_check_code_cannot_confirm_one():
    ledger = LedgerRecord(ORDINARY.key, ISSUED, Decimal("47.17"), Decimal("50.00"))
    assert codes(diagnose(ordinary(), today=TODAY, ledger=ledger)) == ["unknown"]
    assert codes(diagnose(ordinary(last6=CHECK_CODE[:6]), today=TODAY, ledger=ledger)) == [
        "unknown"
    ]


def test_two_wrong_fields_look_exactly_like_an_unknown_invoice():
    query = special(issue_date=date(2026, 3, 3), amount="999.00")
    assert diagnose(query, today=TODAY, ledger=SPECIAL_LEDGER) == (Finding(FindingCode.UNKNOWN),)
    today_query = special(issue_date=TODAY, amount="999.00")
    assert codes(diagnose(today_query, today=TODAY, ledger=SPECIAL_LEDGER)) == ["issued_today"]


def test_a_ledger_record_for_another_invoice_is_a_programming_error():
    with pytest.raises(InvoiceRuleError) as caught:
        diagnose(special(), today=TODAY, ledger=ORDINARY_LEDGER)
    assert caught.value.code == "ledger_key_mismatch"


# --- findings as values -----------------------------------------------------------------------

EVERY_FINDING = [
    diagnose(digital(), today=TODAY, ledger=None)[0],
    diagnose(
        parse_qr("01,32,,24312000000136634917,0.01,20240514,,1DD6").lookup_query(), today=TODAY
    )[0],
    diagnose(special(issue_date=TODAY), today=TODAY)[0],
    diagnose(special(amount="1130.00"), today=TODAY, ledger=SPECIAL_LEDGER)[0],
    diagnose(special(issue_date=date(2026, 3, 3)), today=TODAY, ledger=SPECIAL_LEDGER)[0],
    diagnose(ordinary(last6=CHECK_CODE[:6]), today=TODAY, ledger=ORDINARY_LEDGER)[0],
    diagnose(ordinary(amount=Decimal("1")), today=TODAY, ledger=ORDINARY_LEDGER)[0],
    diagnose(special(), today=TODAY, ledger=SPECIAL_LEDGER, registry=REGISTERED)[0],
    diagnose(special(), today=TODAY, ledger=SPECIAL_LEDGER, registry=RETRYING)[0],
    diagnose(
        special(),
        today=TODAY,
        ledger=SPECIAL_LEDGER,
        registry=RegistryState(attempts=12, last_error="unavailable", exhausted=True),
    )[0],
]


def test_a_registration_that_failed_for_good_is_not_called_queued():
    dead = RegistryState(attempts=12, last_error="timeout", exhausted=True)
    (finding,) = diagnose(special(), today=TODAY, ledger=SPECIAL_LEDGER, registry=dead)
    assert finding.code == "registration_failed" and finding.params["attempts"] == 12
    zh = finding.message()
    assert "12 次" in zh and "均未成功" in zh and "登记系统响应超时" in zh and "排队" not in zh
    assert "下一个工作日结束" in zh  # no task given: still a time to expect an answer
    told = type(finding)(
        finding.code,
        {**finding.params, "reference": "BJ-2026-000007", "reply_by": "2026-03-10T17:30:00+08:00"},
    )
    assert "BJ-2026-000007" in told.message() and "2026-03-10" in told.message()
    assert "BJ-2026-000007" in told.message("en") and "every attempt failed" in told.message("en")


def test_every_code_is_exercised():
    assert {finding.code for finding in EVERY_FINDING} == set(FindingCode)


@pytest.mark.parametrize("finding", EVERY_FINDING, ids=lambda finding: finding.code)
def test_findings_speak_both_languages_and_serialise(finding):
    zh, en = finding.message(), finding.message("en")
    assert zh and en and zh != en
    assert finding.message("en_US") == en and finding.message("fr") == zh
    assert "{" not in zh + en
    payload = json.loads(json.dumps(finding.as_dict("en")))
    assert payload == {"code": finding.code.value, "params": finding.params, "message": en}


def test_registry_error_texts_are_bilingual():
    for zh, en in REGISTRY_ERRORS.values():
        assert zh and en


# --- the leak rule, generally -----------------------------------------------------------------

_dates = st.dates(min_value=date(2026, 2, 20), max_value=date(2026, 3, 12))
_amounts = st.integers(1, 200_000).map(lambda cents: Decimal(cents).scaleb(-2))
_check_codes = st.text(alphabet="0123456789", min_size=20, max_size=20)


@st.composite
def ledger_and_query(draw):
    """A Beijing ledger record and a query whose fields are each right, confused, or random."""
    identity = draw(st.sampled_from([SPECIAL, ORDINARY, DIGITAL]))
    amount = draw(_amounts)
    total = amount + draw(st.sampled_from([Decimal(0), amount * Decimal("0.13")])).quantize(
        Decimal("0.01")
    )
    check_code = draw(st.one_of(st.none(), _check_codes)) if identity is ORDINARY else None
    ledger = LedgerRecord(identity.key, draw(_dates), amount, total, check_code)

    def typed(right, *others):
        return draw(st.sampled_from([right, *others]))

    known_code = check_code or "0" * 20
    amount_choices = [amount, total, draw(_amounts)] + ([] if identity is SPECIAL else [None])
    query = LookupQuery(
        identity,
        issue_date=typed(ledger.issue_date, draw(_dates)),
        amount=typed(*amount_choices),
        total=(
            typed(total, amount, draw(_amounts))
            if identity is DIGITAL
            else typed(None, total, draw(_amounts))
        ),
        check_code_last6=(
            typed(known_code[-6:], known_code[:6], draw(_check_codes)[-6:])
            if identity is ORDINARY
            else None
        ),
    )
    return ledger, query


def _mismatched(ledger, query):
    typed = {field: query.value(field) for field in query.supplied_fields}
    known = {
        VerificationField.ISSUE_DATE: ledger.issue_date,
        VerificationField.AMOUNT: ledger.amount,
        VerificationField.TOTAL: ledger.total,
        VerificationField.CHECK_CODE_LAST6: ledger.check_code and ledger.check_code[-6:],
    }
    return [field for field, value in typed.items() if value != known[field]]


@PROPERTIES
@given(sample=ledger_and_query(), registered=st.booleans())
def test_failed_matches_never_leak(sample, registered):
    ledger, query = sample
    registry = REGISTERED if registered else RETRYING
    findings = diagnose(query, today=TODAY, ledger=ledger, registry=registry)
    absent = diagnose(query, today=TODAY, ledger=None)
    mismatched = _mismatched(ledger, query)
    if not mismatched:
        assert codes(findings)[-1] in {"registered", "pending_registry"}
        return
    # Status is only ever told on a full match.
    assert not {"registered", "pending_registry"} & set(codes(findings))
    if len(mismatched) > 1:
        assert findings == absent
    elif findings != absent:
        # A hint names the one wrong field and nothing the customer did not type.
        (hint,) = findings
        assert hint.params["field"] == mismatched[0].value
        assert set(hint.params) <= {"field", "entered"}
        if hint.code in {"date_mismatch", "amount_mismatch"}:
            # Only after another amount or the check code proved the customer holds it.
            assert {
                VerificationField.AMOUNT,
                VerificationField.TOTAL,
                VerificationField.CHECK_CODE_LAST6,
            } & (set(query.supplied_fields) - set(mismatched))
