"""Calendar periods in a tenant's timezone (presentation), returned as aware UTC datetimes; and
the one parser of the months, days and moments a client may name.

Every period a client names lies between ``EARLIEST`` and ``LATEST``: month arithmetic (the next
month, a day after the end, 30 days before) then stays inside what ``date`` and PostgreSQL hold,
so ``9999-12`` or ``0001-01-01`` is refused with a precise message instead of overflowing.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

FIRST_YEAR, LAST_YEAR = 2000, 2100
EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
LATEST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)  # exclusive
# The same bounds as a regular expression, for OpenAPI schemas and HTML inputs.
MONTH_PATTERN = r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$"
BOUNDS = f"between {FIRST_YEAR}-01 and {LAST_YEAR}-12"


class PeriodError(ValueError):
    """A month, day or moment that is malformed or outside the supported years; the message
    says which and is meant for the client."""


def month_parse(text: str) -> date:
    """``"2026-10"`` -> ``date(2026, 10, 1)``; :class:`PeriodError` for anything else."""
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", text.strip())
    if match is None or not 1 <= int(match[2]) <= 12:
        raise PeriodError(f"{text[:40]!r} is not a month (YYYY-MM, e.g. 2026-10).")
    if not FIRST_YEAR <= int(match[1]) <= LAST_YEAR:
        raise PeriodError(f"{text[:40]!r} is outside the supported months ({BOUNDS}).")
    return date(int(match[1]), int(match[2]), 1)


def day_check(day: date) -> date:
    """``day`` itself when it lies in the supported years, else :class:`PeriodError`."""
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise PeriodError(f"{day.isoformat()} is outside the supported days ({BOUNDS}).")
    return day


def day_parse(text: str) -> date:
    """``"2026-10-31"`` -> ``date(2026, 10, 31)``; :class:`PeriodError` for anything else."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(f"{text[:40]!r} is not a date (YYYY-MM-DD, e.g. 2026-10-31).") from None
    return day_check(day)


def moment_check(moment: datetime) -> datetime:
    """An aware ``moment`` in UTC when it lies in the supported years, else
    :class:`PeriodError`."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # an offset pushed it past year 1 or 9999
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise PeriodError(f"{moment.isoformat()} is outside the supported times ({BOUNDS}).")
    return utc


def moment_parse(text: str) -> datetime:
    """An ISO 8601 date or date-time (one without an offset is UTC) within the supported years,
    as aware UTC; :class:`PeriodError` for anything else. An offset PostgreSQL cannot hold
    (``+20:00``) is fine: the moment is converted."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(
            f"{text[:40]!r} is not an ISO 8601 date or date-time (e.g. 2026-11-01 or"
            " 2026-11-01T00:00:00Z)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment_check(moment)


def next_month(period: date) -> date:
    """The first day of the month after ``period``'s."""
    return date(period.year + period.month // 12, period.month % 12 + 1, 1)


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
