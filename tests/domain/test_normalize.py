"""Normalisation of what people type: full-width forms, separators, and only ASCII digits."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.errors import InvoiceRuleError
from portal.domain.normalize import (
    first_non_digit,
    is_ascii_digits,
    normalize_text,
    require_text,
    strip_separators,
)

PROPERTIES = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("０１２", "012"),
        ("ＡＢｃ", "ABc"),
        ("  a \u3000\t b  ", "a b"),
        ("￥１，２", "¥1,2"),
        ("", ""),
    ],
)
def test_normalize_text(text, normalized):
    assert normalize_text(text) == normalized


@pytest.mark.parametrize(
    "text",
    [
        "0110 0160 0211",
        "0110-0160-0211",
        "0110—0160–0211",
        "0110－0160－0211",
        "0110，0160。0211",
        "0110、0160·0211",
        "0110.0160/0211",
        "０１１０\u3000０１６０\u3000０２１１",
        "0110_0160_0211",
        "0110\u22120160\u20110211",
    ],
)
def test_strip_separators(text):
    assert strip_separators(text) == "011001600211"


def test_only_ascii_digits_are_digits():
    assert is_ascii_digits("0123456789")
    # str.isdigit() would accept both of these.
    assert not is_ascii_digits("١٢٣")
    assert not is_ascii_digits("²")
    assert not is_ascii_digits("")
    assert first_non_digit("12a3") == "a"
    assert first_non_digit("123") is None


def test_require_text():
    assert require_text(None, "code") == ""
    assert require_text("x", "code") == "x"
    with pytest.raises(InvoiceRuleError) as caught:
        require_text(12, "code")
    assert (caught.value.code, caught.value.field) == ("not_text", "code")


@PROPERTIES
@given(st.text())
def test_normalisation_is_idempotent(text):
    assert normalize_text(normalize_text(text)) == normalize_text(text)
    stripped = strip_separators(text)
    assert strip_separators(stripped) == stripped
    assert not any(character.isspace() for character in stripped)
