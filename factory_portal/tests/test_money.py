"""Money (pure, no database): the cent, half-even rounding, percentages and display."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factory_portal import money
from factory_portal.money import (
    CENT,
    cents_from_float,
    percent,
    percent_of,
    quantize_cents,
    ratio_percent,
    usd,
)


def test_cents_round_half_even():
    assert quantize_cents(Decimal("0.125")) == Decimal("0.12")
    assert quantize_cents(Decimal("0.135")) == Decimal("0.14")


@given(st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, places=6))
def test_cents_have_two_places_and_move_less_than_half_a_cent(amount):
    cents = quantize_cents(amount)
    assert cents.as_tuple().exponent == -2
    assert abs(cents - amount) <= CENT / 2


@pytest.mark.parametrize(
    ("value", "cents"),
    [(2.675, Decimal("2.67")), (0.125, Decimal("0.12")), (1234.5, Decimal("1234.50")), (0.0, 0)],
)
def test_floats_round_on_their_binary_value(value, cents):
    # 2.675 is 2.67499999... as a float: the estimate is rounded as held, not as written.
    assert cents_from_float(value) == cents
    assert str(cents_from_float(value)).count(".") == 1


@pytest.mark.parametrize(
    ("part", "whole", "places", "expected"),
    [
        (3, 4, 1, "75.0"),
        (1, 3, 1, "33.3"),
        (2, 3, 1, "66.7"),
        (1, 8, 1, "12.5"),  # not 12.6: half-even, like the cents
        (3, 8, 1, "37.5"),
        (Decimal("12.50"), Decimal("10"), 2, "125.00"),
        (Decimal("0.4"), 1, 2, "40.00"),
    ],
)
def test_percent_is_rounded_half_even_to_the_places_asked(part, whole, places, expected):
    assert str(percent(part, whole, places)) == expected


def test_percent_without_places_is_exact_for_threshold_comparisons():
    assert percent(Decimal(80), Decimal(100)) == 80
    assert percent(Decimal("79.999"), Decimal(100)) < 80
    assert percent(1, 3) == Decimal(100) / 3


def test_percent_of_is_the_share_a_rate_names():
    assert percent_of(Decimal("200"), 80) == Decimal(160)
    assert percent_of(Decimal("99.99"), 50) == Decimal("49.995")  # unrounded


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (Decimal("1234.565"), "$1,234.56"),
        (Decimal("1234.575"), "$1,234.58"),
        (Decimal("-3"), "-$3.00"),
        (Decimal("-0.001"), "$0.00"),  # rounds to zero: no minus sign
        (0, "$0.00"),
        (None, "—"),
    ],
)
def test_usd_shows_dollars_and_cents(amount, shown):
    assert usd(amount) == shown


@pytest.mark.parametrize(
    ("ratio", "shown"),
    [(Decimal("0.4"), "40.00%"), (Decimal("1.23456"), "123.46%"), (0, "0.00%"), (None, "—")],
)
def test_ratios_show_as_percentages(ratio, shown):
    assert ratio_percent(ratio) == shown


@pytest.mark.parametrize(
    "fmt, amount, expected",
    [
        ("en", Decimal("1234567.125"), "$1,234,567.12"),
        ("de", Decimal("1234567.135"), "1.234.567,14\u00a0$"),
        ("fr", Decimal("-1234.5"), "-1\u202f234,50\u00a0$"),
        ("ch", Decimal("1234.5"), "$1\u2019234.50"),
        ("nope", Decimal("1"), "$1.00"),  # an unknown format writes the default
    ],
)
def test_amounts_follow_the_number_format(fmt, amount, expected):
    assert money.usd(amount, fmt) == expected


def test_percent_and_counts_follow_the_number_format():
    assert money.ratio_percent(Decimal("0.4567"), "de") == "45,67%"
    assert money.grouped(1234567, 0, "fr") == "1\u202f234\u202f567"
    assert money.usd(None, "de") == money.MISSING
