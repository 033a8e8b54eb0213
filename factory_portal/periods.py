"""Calendar periods in a tenant's timezone (presentation), returned as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def month_start(now: datetime, tz_name: str = "UTC") -> datetime:
    local = now.astimezone(ZoneInfo(tz_name))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)
