"""Months, days and moments a client names: one parser, bounded to the years 2000-2100, so
``9999-12`` is a 400/404 with a precise message on every page, API and command, never a 500."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from hypothesis import given
from hypothesis import strategies as st

from factory_portal.periods import (
    PeriodError,
    day_parse,
    moment_check,
    moment_parse,
    month_parse,
    next_month,
)
from tests.support import bearer, host_client, key_for, logged_in_client


@pytest.mark.parametrize(
    ("text", "month"),
    [("2000-01", date(2000, 1, 1)), ("2026-10", date(2026, 10, 1)), ("2100-12", date(2100, 12, 1))],
)
def test_months_in_range_parse(text, month):
    assert month_parse(text) == month


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9999-12", "outside the supported months (between 2000-01 and 2100-12)"),
        ("1999-12", "outside the supported months"),
        ("2101-01", "outside the supported months"),
        ("0000-01", "outside the supported months"),
        ("2026-13", "is not a month (YYYY-MM"),
        ("2026-00", "is not a month"),
        ("2026-1", "is not a month"),
        ("\u0662\u0660\u0662\u0666-\u0661\u0660", "is not a month"),  # Arabic-Indic digits
        ("October", "is not a month"),
        ("", "is not a month"),
    ],
)
def test_other_months_are_refused_with_the_reason(text, message):
    with pytest.raises(PeriodError, match=re.escape(message)):
        month_parse(text)


@given(st.dates())
def test_every_accepted_day_leaves_room_for_month_arithmetic(day):
    try:
        parsed = day_parse(day.isoformat())
    except PeriodError as exc:
        assert not 2000 <= day.year <= 2100
        assert "outside the supported days" in str(exc)
        return
    assert parsed == day
    next_month(next_month(parsed.replace(day=1)))
    parsed - timedelta(days=400), parsed + timedelta(days=400)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),  # overflows in UTC
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(1999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(2101, 1, 1, tzinfo=UTC),
    ],
)
def test_moments_outside_the_years_are_refused(moment):
    with pytest.raises(PeriodError, match="outside the supported times"):
        moment_check(moment)


@pytest.mark.parametrize(
    ("text", "zone", "moment"),
    [
        # A date alone starts at the zone's midnight; a date-time without an offset is UTC.
        ("2026-11-01", "Asia/Tokyo", datetime(2026, 10, 31, 15, tzinfo=UTC)),
        ("2026-11-01", "America/New_York", datetime(2026, 11, 1, 4, tzinfo=UTC)),
        ("20261101", "America/New_York", datetime(2026, 11, 1, 4, tzinfo=UTC)),
        ("2026-11-01T00:00:00", "America/New_York", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T00:00:00+09:00", "America/New_York", datetime(2026, 10, 31, 15, tzinfo=UTC)),
        ("2026-11-01", None, datetime(2026, 11, 1, tzinfo=UTC)),
        # Santiago skips midnight when summer time starts: the day starts at 01:00.
        ("2026-09-06", "America/Santiago", datetime(2026, 9, 6, 4, tzinfo=UTC)),
    ],
)
def test_a_date_alone_is_the_day_of_the_zone(text, zone, moment):
    assert moment_parse(text, day_zone=ZoneInfo(zone) if zone else None) == moment


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "field", "message"),
    [
        ("/api/v1/reports/monthly?month=9999-12", "month", "outside the supported months"),
        ("/api/v1/reports/monthly?month=2026-13", "month", "is not a month"),
        ("/api/v1/costs?start=9999-12-01&end=9999-12-31T23:59:59", "start", "outside"),
        ("/api/v1/costs?start=9999-11-01&end=9999-12-31&granularity=month", "start", "outside"),
        ("/api/v1/costs?end=0001-01-03", "end", "outside the supported days"),
        ("/api/v1/costs?end=0001-01-03T00:00:00", "end", "outside the supported times"),
        ("/api/v1/usage?start=9999-12-01&end=9999-12-31T23:59:59", "end", "outside"),
        ("/api/v1/usage?end=9999-12-31T23:00:00-05:00", "end", "outside the supported times"),
        ("/api/v1/runs?end=9999-12-31", "end", "outside the supported days"),
        ("/api/v1/runs?start=0001-01-01", "start", "outside the supported days"),
    ],
)
def test_api_refuses_periods_out_of_range_with_a_problem(alpha, path, field, message):
    _, raw = key_for(alpha, ["read"])
    response = host_client(alpha.host).get(path, **bearer(raw))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert message in " ".join(response.json()["errors"][field])


@pytest.mark.django_db
def test_pages_explain_or_refuse_months_out_of_range(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    costs = client.get("/costs/?month=9999-12")  # like the page's other filters: the default
    assert costs.status_code == 200
    assert "outside the supported months (between 2000-01 and 2100-12)" in costs.content.decode()
    assert client.get("/costs/?month=2026-10").status_code == 200
    assert client.get("/reports/9999-12/csv").status_code == 404
    assert client.get("/reports/2026-10/csv").status_code == 200


@pytest.mark.django_db
def test_pages_with_days_out_of_range_show_the_default(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert client.get("/runs/?to=9999-12-31").status_code == 200
    usage = client.get("/usage/?to=9999-12-31")
    assert usage.status_code == 200
    assert "outside the supported days" in usage.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["allocate", "report"])
def test_commands_refuse_months_out_of_range(command, tmp_path):
    option = "--period" if command == "allocate" else "--month"
    extra = [] if command == "allocate" else ["--customers", "-o", str(tmp_path / "r.csv")]
    with pytest.raises(CommandError, match="outside the supported months"):
        call_command(command, option, "9999-12", *extra)
