"""Calendar periods in a tenant's timezone (presentation), returned as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def month_start(now: datetime, tz_name: str = "UTC") -> datetime:
    local = now.astimezone(ZoneInfo(tz_name))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


def months_ending(last: date, count: int) -> list[date]:
    """``count`` first-of-month dates ending with ``last``'s month, oldest first."""
    year, month = last.year, last.month
    months = []
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]
