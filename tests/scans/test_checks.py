from portal.domain import parse_qr
from portal.domain.errors import InvoiceRuleError
from portal.scans.checks import Check, evidence_checks
from portal.scans.qr import QrReading

BEIJING = {"code": "011002400111", "number": "12345678"}


def by_code(checks: list[Check]) -> dict[str, Check]:
    return {check.code: check for check in checks}


def test_a_complete_beijing_invoice_passes_every_check():
    checks = by_code(
        evidence_checks(
            {
                **BEIJING,
                "amount": "100.00",
                "tax": "13.00",
                "total": "113.00",
                "buyer_tax_id": "911101017967003199",
            }
        )
    )
    assert set(checks) == {"beijing", "totals", "buyer_tax_id"}
    assert all(check.ok for check in checks.values())
    assert checks["beijing"].message() == "这是北京开具的发票。"
    assert checks["totals"].message("en") == "Amount 100.00 plus tax 13.00 equals the total 113.00."


def test_totals_that_do_not_add_up_fail_with_the_domain_message():
    check = by_code(
        evidence_checks({**BEIJING, "amount": "100.00", "tax": "13.00", "total": "130.00"})
    )["totals"]
    assert not check.ok
    assert check.message("en") == "Amount 100.00 plus tax 13.00 must equal the total 130.00."


def test_a_wrong_check_character_in_the_buyer_tax_id_fails():
    check = by_code(evidence_checks({**BEIJING, "buyer_tax_id": "91320621MA1MRHG207"}))[
        "buyer_tax_id"
    ]
    assert not check.ok
    assert "校验码" in check.message()


def test_legacy_fifteen_character_tax_ids_pass_unchecked():
    check = by_code(evidence_checks({**BEIJING, "buyer_tax_id": "110101123456789"}))["buyer_tax_id"]
    assert check.ok and "15" in check.message()


def test_an_invoice_from_elsewhere_is_flagged_as_not_beijing():
    check = by_code(evidence_checks({"number": "24312000000136634917"}))["beijing"]
    assert not check.ok
    assert "上海" in check.message()
    assert "Shanghai" in check.message("en")


def test_an_impossible_identity_fails_the_identity_check():
    check = by_code(evidence_checks({"number": "12345678"}))["identity"]
    assert not check.ok
    assert check.message("en").startswith("The invoice code or number is wrong: ")


def test_no_invoice_number_means_nothing_was_found():
    checks = by_code(evidence_checks({"total": "10.00"}))
    assert not checks["found"].ok


def test_a_broken_qr_code_and_disagreeing_sources_are_reported():
    error = InvoiceRuleError("qr_field_count", field="qr", count=3)
    qr = QrReading(text="01,10,x", payload=None, error=error, where="display")
    checks = by_code(evidence_checks(BEIJING, qr=qr, conflicts=["number", "amount"]))
    assert not checks["qr"].ok
    assert "3" in checks["qr"].message("en")
    assert not checks["sources_agree"].ok
    assert checks["sources_agree"].message() == (
        "二维码与票面文字读出的发票号码、不含税金额不一致，请以发票原件为准核对。"
    )


def test_a_good_qr_code_adds_no_check():
    text = "01,10,011002400111,12345678,100.00,20240514,65431824771847114698,8BDD,"
    qr = QrReading(text=text, payload=parse_qr(text), error=None, where="display")
    assert [check.code for check in evidence_checks(BEIJING, qr=qr)] == ["beijing"]


def test_checks_serialise_to_json_values():
    check = Check("totals", True, "好", "fine")
    assert check.to_json() == {
        "code": "totals",
        "ok": True,
        "message": {"zh_CN": "好", "en": "fine"},
    }
