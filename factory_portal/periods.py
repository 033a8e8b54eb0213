"""Calendar periods in a tenant's timezone (presentation), returned as aware UTC datetimes; and
the one parser of the months, days and moments a client may name. The one home of month rules:
a month's text (``YYYY-MM``), its first and last day, the months before and after, a day's or a
month's start as UTC, report period keys; other modules call these instead of writing their own.
It does not choose a time zone: callers pass the one they present in.

Every period a client names lies between ``EARLIEST`` and ``LATEST``: month arithmetic (the next
month, a day after the end, 30 days before) then stays inside what ``date`` and PostgreSQL hold,
so ``9999-12`` or ``0001-01-01`` is refused with a precise message instead of overflowing.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
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


def moment_parse(text: str, day_zone: ZoneInfo | None = None) -> datetime:
    """An ISO 8601 date or date-time within the supported years, as aware UTC;
    :class:`PeriodError` for anything else. A date-time without an offset is UTC; a date alone
    is the first instant of that day in ``day_zone`` (a tenant's zone: its day starts at its
    midnight), UTC when none is given. An offset PostgreSQL cannot hold (``+20:00``) is fine:
    the moment is converted."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(
            f"{text[:40]!r} is not an ISO 8601 date or date-time (e.g. 2026-11-01 or"
            " 2026-11-01T00:00:00Z)."
        ) from None
    if day_zone is not None and _date_only(text):
        return moment_check(local_day_start(day_check(moment.date()), day_zone))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment_check(moment)


def _date_only(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def month_text(period: date) -> str:
    """``date(2026, 10, 31)`` -> ``"2026-10"``: the month as :func:`month_parse` reads it."""
    return f"{period:%Y-%m}"


def month_of(day: date) -> date:
    """The first day of ``day``'s month: the date a month is named by."""
    return day.replace(day=1)


def month_last_day(day: date) -> date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def next_month(period: date) -> date:
    """The first day of the month after ``period``'s."""
    return date(period.year + period.month // 12, period.month % 12 + 1, 1)


def previous_month(period: date) -> date:
    """The first day of the month before ``period``'s."""
    return date(period.year - (period.month == 1), (period.month - 2) % 12 + 1, 1)


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``, as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def month_start(now: datetime, tz_name: str = "UTC") -> datetime:
    """The start of ``now``'s month in the time zone ``tz_name``, as aware UTC."""
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


def months_spanning(first: date, last: date) -> list[date]:
    """The first days of the months from ``first``'s to ``last``'s, oldest first; empty when
    ``last`` lies in an earlier month."""
    return months_ending(last, (last.year - first.year) * 12 + last.month - first.month + 1)


def period_key(day: date, grain: str) -> str:
    """The report period ``day`` falls in, as text: the day itself (``"day"``), the Monday that
    starts its week (``"week"``) or its month (``"month"``, ``YYYY-MM``)."""
    if grain == "week":
        return str(day - timedelta(days=day.weekday()))
    if grain == "month":
        return month_text(day)
    return str(day)


def zone(name: str) -> ZoneInfo:
    """The time zone named ``name`` (an IANA name a tenant was given; checked when it was set)."""
    return ZoneInfo(name or "UTC")


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    """The calendar day ``moment`` falls on in ``tz``: the day a tenant counts it in."""
    return moment.astimezone(tz).date()


def local_day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz`` (its midnight, or the first hour that exists when a
    DST change skips midnight), as aware UTC."""
    local = datetime(day.year, day.month, day.day, tzinfo=tz)
    return local.astimezone(UTC)


def local_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants ``[start, end)`` of the local days ``start <= day < end`` in ``tz``."""
    return local_day_start(start, tz), local_day_start(end, tz)
