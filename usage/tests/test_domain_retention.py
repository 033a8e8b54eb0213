"""The retention rule: which UTC months of raw events a tenant keeps (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from usage.domain import retention

NOW = datetime(2026, 12, 15, 12, tzinfo=UTC)
MONTHS = [date(2025, m, 1) for m in range(1, 13)] + [date(2026, m, 1) for m in range(1, 13)]


def test_utc_tenant_keeps_exactly_its_last_months():
    kept_from = retention.retained_from(months=13, now=NOW, tz=ZoneInfo("UTC"))
    assert kept_from == datetime(2025, 12, 1, tzinfo=UTC)
    expired = retention.expired_months(MONTHS, retention_months=13, now=NOW, tz=ZoneInfo("UTC"))
    assert expired == [date(2025, m, 1) for m in range(1, 12)]


def test_east_of_utc_keeps_the_utc_month_that_holds_its_first_local_hours():
    # Tokyo's 1 Dec 2025 begins at 30 Nov 15:00 UTC: November (UTC) is kept whole.
    tokyo = ZoneInfo("Asia/Tokyo")
    assert retention.retention_cutoff(months=13, now=NOW, tz=tokyo) == datetime(
        2025, 11, 30, 15, tzinfo=UTC
    )
    assert retention.retained_from(months=13, now=NOW, tz=tokyo) == datetime(
        2025, 11, 1, tzinfo=UTC
    )
    expired = retention.expired_months(MONTHS, retention_months=13, now=NOW, tz=tokyo)
    assert expired[-1] == date(2025, 10, 1)


def test_west_of_utc_local_month_can_still_be_the_previous_one():
    # 1 Dec 2026 03:00 UTC is still 30 Nov in Los Angeles: its current month is November.
    now = datetime(2026, 12, 1, 3, tzinfo=UTC)
    la = ZoneInfo("America/Los_Angeles")
    assert retention.retention_cutoff(months=1, now=now, tz=la) == datetime(
        2026, 11, 1, 7, tzinfo=UTC
    )
    assert retention.expired_months(MONTHS, retention_months=1, now=now, tz=la)[-1] == date(
        2026, 10, 1
    )


def test_one_month_keeps_the_current_month_only():
    assert retention.expired_months(
        [date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)],
        retention_months=1,
        now=NOW,
        tz=ZoneInfo("UTC"),
    ) == [date(2026, 11, 1)]


def test_fewer_than_one_month_is_refused():
    with pytest.raises(ValueError, match="at least one month"):
        retention.retention_cutoff(months=0, now=NOW, tz=ZoneInfo("UTC"))


def test_partition_names_round_trip_and_bounds():
    name = retention.partition_name("usage_llmusageevent", date(2026, 2, 1))
    assert name == "usage_llmusageevent_p2026_02"
    assert retention.partition_month("usage_llmusageevent", name) == date(2026, 2, 1)
    assert retention.partition_month("usage_llmusageevent", "usage_llmusageevent_default") is None
    assert retention.month_bounds(date(2026, 12, 1)) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert retention.months_between(
        datetime(2026, 11, 30, 23, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    ) == [date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)]
