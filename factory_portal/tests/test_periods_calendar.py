"""Month arithmetic, month text and day starts (pure, no database): the rules every page, API,
export and alert reads its months through."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factory_portal.periods import (
    day_start,
    month_last_day,
    month_of,
    month_parse,
    month_text,
    months_ending,
    months_spanning,
    next_month,
    period_key,
    previous_month,
)

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))


@given(days)
def test_month_text_is_what_month_parse_reads(day):
    assert month_text(day) == f"{day.year:04d}-{day.month:02d}"
    assert month_parse(month_text(day)) == month_of(day)


@given(days)
def test_a_month_runs_from_its_first_to_its_last_day(day):
    first, last = month_of(day), month_last_day(day)
    assert first.day == 1 and first <= day <= last
    assert last.day == calendar.monthrange(day.year, day.month)[1]
    assert last + timedelta(days=1) == next_month(day)


@given(days)
def test_previous_month_undoes_next_month(day):
    assert previous_month(next_month(day)) == month_of(day)
    assert next_month(previous_month(day)) == month_of(day)


@pytest.mark.parametrize(
    ("day", "before", "after"),
    [
        (date(2026, 1, 31), date(2025, 12, 1), date(2026, 2, 1)),
        (date(2026, 12, 1), date(2026, 11, 1), date(2027, 1, 1)),
        (date(2024, 3, 15), date(2024, 2, 1), date(2024, 4, 1)),
    ],
)
def test_months_either_side_cross_the_year(day, before, after):
    assert (previous_month(day), next_month(day)) == (before, after)


def test_month_last_day_knows_leap_years():
    assert month_last_day(date(2024, 2, 3)) == date(2024, 2, 29)
    assert month_last_day(date(2100, 2, 3)) == date(2100, 2, 28)


def test_day_start_is_midnight_utc():
    assert day_start(date(2026, 10, 31)) == datetime(2026, 10, 31, tzinfo=UTC)
    assert day_start(date(2026, 10, 31)).utcoffset() == timedelta(0)


@given(days, days)
def test_months_spanning_names_every_month_touched_once(a, b):
    first, last = min(a, b), max(a, b)
    months = months_spanning(first, last)
    assert months[0] == month_of(first) and months[-1] == month_of(last)
    assert all(next_month(m) == n for m, n in pairwise(months))
    assert months == months_ending(last, len(months))


def test_months_spanning_is_empty_when_last_is_earlier():
    assert months_spanning(date(2026, 3, 1), date(2026, 2, 28)) == []


@pytest.mark.parametrize(
    ("grain", "key"),
    [("day", "2026-10-29"), ("week", "2026-10-26"), ("month", "2026-10")],  # a Thursday
)
def test_period_keys(grain, key):
    assert period_key(date(2026, 10, 29), grain) == key
