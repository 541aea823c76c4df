"""The invoice's fields are named once (portal/domain/fields.py) and the key rule once
(portal/domain/identity.py), and everything else uses them."""

import ast
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from portal.domain import InvoiceRuleError, parse_identity
from portal.domain.fields import (
    CLAIM_FIELDS,
    CONFIRM_FIELDS,
    DISPLAY_ORDER,
    EXTRACTED_FIELDS,
    MONEY_FIELDS,
    NOT_ON_DIGITAL,
    OPTIONAL_WIRE_FIELDS,
    WIRE_FIELDS,
    wire_text,
)
from portal.domain.identity import canonical_key
from portal.models import Invoice
from portal.registry import invoice_key

ROOT = Path(__file__).resolve().parents[2]


def test_the_display_order_is_the_wire_fields_in_another_order():
    assert sorted(DISPLAY_ORDER) == sorted(WIRE_FIELDS)
    assert EXTRACTED_FIELDS[: len(DISPLAY_ORDER)] == DISPLAY_ORDER


def test_the_forms_and_the_optional_fields_are_wire_fields():
    wire = set(WIRE_FIELDS)
    assert set(CLAIM_FIELDS) <= wire and set(CONFIRM_FIELDS) <= wire
    assert set(MONEY_FIELDS) | OPTIONAL_WIRE_FIELDS | set(NOT_ON_DIGITAL) <= wire


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("47.2"), "47.20"),
        (Decimal("1E+2"), "100.00"),
        (date(2026, 5, 1), "2026-05-01"),
        ("011001900111", "011001900111"),
        ("", ""),
        (None, None),
    ],
)
def test_a_value_is_written_as_the_protocol_writes_it(value, text):
    assert wire_text(value) == text


def test_the_ledger_has_a_column_for_every_wire_field():
    assert set(WIRE_FIELDS) <= set(Invoice.__table__.columns.keys())


def _field_lists(path: Path):
    """Tuple, list and set literals that name most of the wire fields (seven or more)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            names = {
                e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in WIRE_FIELDS
            }
            if len(names) >= 7:
                yield node.lineno


def test_no_module_but_the_domain_spells_out_the_wire_fields():
    here = ROOT / "portal" / "domain" / "fields.py"
    copies = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in ("portal", "workers", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != here
        for line in _field_lists(path)
    ]
    assert copies == []


@pytest.mark.parametrize(
    ("code", "number"),
    [("1100194130", "12345678"), ("011001900111", "51142414"), ("", "25117000001115703415")],
)
def test_the_registry_client_and_the_ledger_key_an_invoice_alike(code, number):
    assert invoice_key(code, number) == canonical_key(code, number)
    assert invoice_key(code, number) == parse_identity(code, number).key


@pytest.mark.parametrize(
    ("code", "number", "field", "error"),
    [
        ("", "51142414", "number", "number_length"),
        ("1100194130", "1234567", "number", "number_length"),
        ("11001941", "12345678", "code", "code_length"),
        ("1100194130", " 12345678", "number", "not_digits"),  # nothing is tidied here
        ("", "２５１１７０００００１１１５７０３４１５", "number", "not_digits"),
        (1100194130, "12345678", "code", "not_text"),
    ],
)
def test_the_key_rule_refuses_what_is_not_canonical(code, number, field, error):
    with pytest.raises(InvoiceRuleError) as refused:
        canonical_key(code, number)

    assert (refused.value.field, refused.value.code) == (field, error)
