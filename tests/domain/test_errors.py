"""The domain's error type and its message catalog, in zh_CN and en."""

import ast
import pickle
import string
from pathlib import Path

import pytest

from portal.domain.errors import ERROR_MESSAGES, InvoiceRuleError, excerpt
from portal.domain.messages import FIELD_LABELS, field_label, render_message, resolve_locale

DOMAIN = Path(__file__).resolve().parents[2] / "portal" / "domain"


def _raised_codes():
    """Every literal code passed to InvoiceRuleError anywhere in portal/domain."""
    found = set()
    for path in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "InvoiceRuleError"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return found


def _placeholders(template):
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_raised_code_has_messages_and_every_message_is_used():
    assert _raised_codes() == set(ERROR_MESSAGES)


@pytest.mark.parametrize("code", sorted(ERROR_MESSAGES))
def test_both_languages_use_the_same_parameters(code):
    zh, en = ERROR_MESSAGES[code]
    assert _placeholders(zh) == _placeholders(en)


def test_an_error_is_a_value_error_with_a_code_params_and_messages():
    error = InvoiceRuleError("code_length", field="code", length=11)
    assert isinstance(error, ValueError)
    assert (error.code, error.params, error.field) == (
        "code_length",
        {"field": "code", "length": 11},
        "code",
    )
    assert error.message() == "发票代码应为 10 位或 12 位数字，您填写了 11 位。"
    assert error.message("en") == "An invoice code has 10 or 12 digits; you entered 11."
    assert str(error) == "code_length: An invoice code has 10 or 12 digits; you entered 11."


def test_field_labels_follow_the_locale():
    error = InvoiceRuleError("required", field="check_code_last6")
    assert error.message() == "请填写校验码后六位。"
    assert error.message("en") == "Please enter the last 6 digits of the check code."


def test_errors_without_a_field():
    assert InvoiceRuleError("qr_empty").field is None


def test_errors_survive_pickling():
    # RQ records job failures across processes. Only our own bytes are unpickled here.
    pickled = pickle.dumps(InvoiceRuleError("not_digits", field="number", char="O"))
    error = pickle.loads(pickled)  # noqa: S301
    assert (error.code, error.params) == ("not_digits", {"field": "number", "char": "O"})


def test_excerpt_keeps_short_text_and_shortens_long_text():
    assert excerpt("abc") == "abc"
    assert excerpt("x" * 100) == "x" * 39 + "…"


@pytest.mark.parametrize(
    ("locale", "resolved"),
    [
        (None, "zh_CN"),
        ("zh_CN", "zh_CN"),
        ("zh", "zh_CN"),
        ("en", "en"),
        ("en_US", "en"),
        ("EN-gb", "en"),
        ("fr", "zh_CN"),
        ("", "zh_CN"),
    ],
)
def test_resolve_locale(locale, resolved):
    assert resolve_locale(locale) == resolved


def test_field_labels():
    assert field_label("amount") == "不含税金额"
    assert field_label("amount", "en") == "amount excluding tax"
    assert field_label("no_such_field", "en") == "no_such_field"
    assert all(zh and en for zh, en in FIELD_LABELS.values())


def test_render_message_keeps_an_explicit_field_label():
    assert (
        render_message(
            ("{field_label}", "{field_label}"), "en", {"field": "amount", "field_label": "net"}
        )
        == "net"
    )
