"""Which calendar months of raw usage events a tenant keeps: a pure rule, no database.

Raw event tables are partitioned by UTC calendar month (``usage.services.partitions``). A tenant
keeps ``retention_months`` of *its own* months (its time zone), the current one included: the
cutoff is the start of the oldest kept local month, and a UTC month is expired once it ends at or
before that cutoff. A UTC month that straddles the cutoff is kept whole, so every kept local month
is complete; ``retained_from`` (the first kept UTC month's start) is at or before the cutoff.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from factory_portal import periods

PARTITION_SUFFIX = re.compile(r"_p(\d{4})_(\d{2})$")
DEFAULT_SUFFIX = "_default"


def utc_month(moment: datetime) -> date:
    """The first day of the UTC calendar month of ``moment`` (aware)."""
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The UTC instants a month partition holds: ``[start, end)``."""
    end = periods.next_month(month)
    return (
        datetime(month.year, month.month, 1, tzinfo=UTC),
        datetime(end.year, end.month, 1, tzinfo=UTC),
    )


def months_between(start: datetime, end: datetime) -> list[date]:
    """The UTC months that ``[start, end]`` touches, oldest first (both ends included)."""
    if end < start:
        return []
    return periods.months_spanning(utc_month(start), utc_month(end))


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y_%m}"


def partition_month(table: str, name: str) -> date | None:
    """The month of a partition named by ``partition_name`` (None: not a month partition)."""
    if not name.startswith(table):
        return None
    match = PARTITION_SUFFIX.search(name[len(table) :])
    return date(int(match[1]), int(match[2]), 1) if match else None


def retention_cutoff(*, months: int, now: datetime, tz: ZoneInfo) -> datetime:
    """The start (UTC) of the oldest local month kept when ``months`` are kept at ``now``."""
    if months < 1:
        raise ValueError("A tenant keeps at least one month of raw events.")
    first = periods.months_ending(periods.local_date(now, tz).replace(day=1), months)[0]
    return periods.local_day_start(first, tz).astimezone(UTC)


def retained_from(*, months: int, now: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose raw events are kept: the start of the UTC month holding the
    cutoff (that month straddles it and is kept whole)."""
    return month_bounds(utc_month(retention_cutoff(months=months, now=now, tz=tz)))[0]


def expired_months(
    months: Iterable[date], *, retention_months: int, now: datetime, tz: ZoneInfo
) -> list[date]:
    """The UTC months among ``months`` whose raw events are past retention, oldest first."""
    keep_from = utc_month(retained_from(months=retention_months, now=now, tz=tz))
    return sorted(m for m in set(months) if m < keep_from)


class RawEventsExpired(Exception):
    """A period begins before the first kept raw event: its raw rows were dropped."""

    def __init__(self, *, start: datetime, retained_from: datetime) -> None:
        self.start = start
        self.retained_from = retained_from
        super().__init__(
            f"The raw usage events of this period are gone: it begins {start:%Y-%m-%d %H:%M} UTC"
            f" and raw events are kept from {retained_from:%Y-%m-%d %H:%M} UTC on (retention)."
            " Totals stay in the monthly report (run ledger and rollups)."
        )


def raw_period_check(*, start: datetime, retained_from: datetime | None) -> None:
    """Raise ``RawEventsExpired`` when a period beginning at ``start`` lost raw rows."""
    if retained_from is not None and start < retained_from:
        raise RawEventsExpired(start=start, retained_from=retained_from)
