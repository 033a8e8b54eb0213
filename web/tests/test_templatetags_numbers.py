"""The pages' number filters group in the workspace's format, whole or with two decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from web.templatetags import portal


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1958, "1,958"),
        (Decimal("3616122.99"), "3,616,122.99"),
        ("3616122.99", "3,616,122.99"),  # text (a review found it shown ungrouped)
        (Decimal("907969.154000"), "907,969.15"),
        (Decimal("100.000000"), "100"),
        ("n/a", "n/a"),
        (None, "None"),
    ],
)
def test_intcomma_groups_whole_and_fractional_numbers(value, shown, monkeypatch):
    monkeypatch.setattr(portal, "number_format", lambda: "en")  # a page's workspace format
    assert portal.intcomma(value) == shown
