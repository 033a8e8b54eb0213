"""The pure rules: what a saved query keeps, names, and when a schedule is due."""

from __future__ import annotations

from datetime import date

import pytest

from saved.domain import (
    MONTHLY,
    QUERY_MAX,
    WEEKLY,
    SavedViewError,
    due_occurrence,
    latest_occurrence,
    name_clean,
    query_clean,
)


def test_a_query_keeps_filters_and_drops_list_positions():
    assert query_clean("?range=7d&project=web&page=3&cursor=abc") == "range=7d&project=web"
    assert query_clean("") == ""
    assert query_clean("q=a%20b&status=") == "q=a+b"


def test_a_query_over_the_cap_is_refused():
    with pytest.raises(SavedViewError, match="too long"):
        query_clean("q=" + "x" * QUERY_MAX)


def test_names_are_trimmed_and_bounded():
    assert name_clean("  Web   last week ") == "Web last week"
    with pytest.raises(SavedViewError):
        name_clean("   ")
    with pytest.raises(SavedViewError):
        name_clean("x" * 81)


@pytest.mark.parametrize(
    ("cadence", "today", "expected"),
    [
        (WEEKLY, date(2026, 11, 30), date(2026, 11, 30)),  # a Monday
        (WEEKLY, date(2026, 12, 3), date(2026, 11, 30)),
        (MONTHLY, date(2026, 12, 1), date(2026, 12, 1)),
        (MONTHLY, date(2026, 12, 17), date(2026, 12, 1)),
    ],
)
def test_the_latest_occurrence(cadence, today, expected):
    assert latest_occurrence(cadence, today).day == expected


def test_a_schedule_made_after_the_occurrence_waits_for_the_next():
    wednesday = date(2026, 12, 2)
    assert due_occurrence(WEEKLY, wednesday, created_on=wednesday) is None
    monday = date(2026, 12, 7)
    assert due_occurrence(WEEKLY, monday, created_on=wednesday).day == monday
    assert due_occurrence(WEEKLY, date(2026, 12, 9), created_on=wednesday).day == monday


def test_an_unknown_cadence_is_refused():
    with pytest.raises(SavedViewError):
        latest_occurrence("daily", date(2026, 12, 1))
