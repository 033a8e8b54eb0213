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


@pytest.mark.parametrize(
    ("current", "previous", "kind", "arrow", "said"),
    [
        # Moves the figures shown cannot see are "=", not an arrow (a UX review).
        (Decimal("0.946801"), Decimal("0.946849"), "rate", "=", "unchanged from"),
        (Decimal("0.051"), Decimal("0.049"), "usd", "=", "unchanged from"),
        # Worse or better is said in words, not by colour alone.
        (Decimal("0.90"), Decimal("0.95"), "rate", "▼", "down, worse from"),
        (Decimal("0.97"), Decimal("0.95"), "rate", "▲", "up, better from"),
        (12, 10, "int", "▲", "up from"),  # neither direction is better
    ],
)
def test_trend_arrows_follow_the_figures_shown(current, previous, kind, arrow, said, monkeypatch):
    from usage.selectors.steps import trend

    monkeypatch.setattr(portal, "number_format", lambda: "en")
    rise_is_worse = None if kind == "int" else False
    html = str(portal.trend(trend(current, previous, rise_is_worse), kind))
    assert f'data-testid="trend">{arrow}<' in html
    assert f"> {said} " in html
    assert ("trend-worse" in html) == ("worse" in said)
