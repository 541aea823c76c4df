"""Ids from untrusted text."""

import pytest

from portal.support.ids import MAX_ID, parse_id


@pytest.mark.parametrize(
    "value, expected",
    [
        ("42", 42),
        (42, 42),
        (str(MAX_ID), MAX_ID),
        ("0", None),
        ("-1", None),
        (str(MAX_ID + 1), None),
        ("9" * 30, None),
        ("4 2", None),
        ("４２", None),
        ("", None),
        (None, None),
        (True, None),
        ("0x10", None),
    ],
)
def test_parse_id(value, expected):
    assert parse_id(value) == expected
