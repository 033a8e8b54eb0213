"""The one time-range control of the analytics pages (overview, usage, costs, steps, health): a
range of the tenant's calendar days chosen by a preset (today, 7/30/90 days, this month, last
month) or a custom start and end, kept in the URL, and the links that keep it.

In the URL a range is ``?range=<preset>`` or ``?range=custom&from=YYYY-MM-DD&to=YYYY-MM-DD``;
``from``/``to`` without ``range`` read as custom (older links and run history's own filters).
Days are the tenant's (the caller passes ``today`` in its time zone); :meth:`DayRange.bounds`
turns them into UTC instants. Pure apart from reading a mapping of query parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.http import QueryDict
from django.utils.http import urlencode

from factory_portal import periods

CUSTOM = "custom"
# Shown in this order; ``custom`` is the form beside them.
PRESET_LABELS = {
    "today": "Today",
    "7d": "7 days",
    "30d": "30 days",
    "90d": "90 days",
    "this_month": "This month",
    "last_month": "Last month",
}
DEFAULT = "30d"
MAX_DAYS = 366
# Parameters that belong to the range (replaced when the range changes) and to a page's position
# in a list (dropped, since a new range is a new list).
RANGE_PARAMS = ("range", "from", "to")
POSITION_PARAMS = ("after", "before", "page", "cursor")


@dataclass(frozen=True)
class DayRange:
    """The tenant's days ``start`` to ``end``, both inclusive, chosen by ``preset``."""

    start: date
    end: date
    preset: str = CUSTOM

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.length)]

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        """``Last 30 days (1 Nov 2026 to 30 Nov 2026)``, ``Today (30 Nov 2026)``."""
        span = (
            _day_text(self.start)
            if self.length == 1
            else f"{_day_text(self.start)} to {_day_text(self.end)}"
        )
        name = PRESET_LABELS.get(self.preset)
        if name is None:
            return span
        if self.preset.endswith("d"):
            name = f"Last {name}"
        return f"{name} ({span})"

    def query(self) -> dict[str, str]:
        """The URL parameters that choose this range again: the preset's key (so a shared link
        moves with the calendar), or the custom days."""
        if self.preset in PRESET_LABELS:
            return {"range": self.preset}
        return {"range": CUSTOM, "from": self.start.isoformat(), "to": self.end.isoformat()}

    def days_query(self) -> dict[str, str]:
        """The days as run history's ``from``/``to`` filters (the drill-down links)."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}

    def previous(self) -> DayRange:
        """The range of equal length just before this one (for comparisons)."""
        end = self.start - timedelta(days=1)
        return DayRange(end - timedelta(days=self.length - 1), end)

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The first instant of ``start`` and of the day after ``end`` in ``zone``, as UTC."""
        return (
            periods.local_day_start(self.start, zone),
            periods.local_day_start(self.end + timedelta(days=1), zone),
        )

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


def _day_text(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def preset_range(key: str, today: date) -> DayRange:
    """The days a preset stands for, ending ``today`` (last month: the whole previous month)."""
    if key == "today":
        return DayRange(today, today, key)
    if key == "this_month":
        return DayRange(periods.month_of(today), today, key)
    if key == "last_month":
        first = periods.previous_month(today)
        return DayRange(first, periods.month_last_day(first), key)
    days = int(key.removesuffix("d"))
    return DayRange(today - timedelta(days=days - 1), today, key)


def month_range(month: date, today: date) -> DayRange:
    """A calendar month as a range (its preset when it is this or last month); this month ends
    today."""
    first = periods.month_of(month)
    if first == periods.month_of(today):
        return preset_range("this_month", today)
    if first == periods.previous_month(today):
        return preset_range("last_month", today)
    return DayRange(first, periods.month_last_day(first))


@dataclass(frozen=True)
class RangeProblem:
    """What was wrong with a range query: the parameter, what an API answers (the problem
    alone) and what a page says (with what it shows instead)."""

    field: str  # range | from | to
    api: str
    page: str


def range_parse(
    params: Mapping[str, str],
    *,
    today: date,
    default: str = DEFAULT,
    max_days: int = MAX_DAYS,
) -> tuple[DayRange, list[str]]:
    """The range the query chose and what was wrong with it (each problem names the parameter
    and what is shown instead). Never raises: a page always has a range to show."""
    chosen, problems = range_read(params, today=today, default=default, max_days=max_days)
    return chosen, [p.page for p in problems]


def range_read(
    params: Mapping[str, str],
    *,
    today: date,
    default: str = DEFAULT,
    max_days: int = MAX_DAYS,
) -> tuple[DayRange, list[RangeProblem]]:
    """``range_parse`` with each problem keyed by its parameter, for an API to refuse with
    (a page shows its fallback; an API answers 400 naming the field)."""
    problems: list[RangeProblem] = []
    key = (params.get("range") or "").strip().lower()
    raw_from, raw_to = params.get("from") or "", params.get("to") or ""
    if key in PRESET_LABELS:
        chosen = preset_range(key, today)
        if chosen.length > max_days:  # a page that allows less than the preset spans
            chosen = DayRange(chosen.end - timedelta(days=max_days - 1), chosen.end)
            limit = f"A range here covers at most {max_days} days"
            problems.append(
                RangeProblem("range", f"{limit}.", f"{limit}; it now starts {chosen.start}.")
            )
        return chosen, problems
    if key and key != CUSTOM:
        wrong = f"range={key[:40]!r} is not a range (one of {', '.join(PRESET_LABELS)} or custom)"
        problems.append(
            RangeProblem(
                "range", f"{wrong}.", f"{wrong}; showing {PRESET_LABELS[default].lower()}."
            )
        )
        return preset_range(default, today), problems
    if not (raw_from or raw_to):
        if key == CUSTOM:
            problems.append(
                RangeProblem(
                    "from",
                    "A custom range needs from or to.",
                    f"A custom range needs from or to; showing {_default_text(default)}.",
                )
            )
        return preset_range(default, today), problems
    fallback = preset_range(default, today)
    try:
        field = "to"
        end = periods.day_parse(raw_to) if raw_to else today
        field = "from"
        start = (
            periods.day_parse(raw_from) if raw_from else end - timedelta(days=fallback.length - 1)
        )
    except periods.PeriodError as exc:
        problems.append(RangeProblem(field, str(exc), f"{exc} Showing {_default_text(default)}."))
        return fallback, problems
    if start > end:
        wrong = f"The start ({start}) is after the end ({end})"
        problems.append(
            RangeProblem("from", f"{wrong}.", f"{wrong}; showing {_default_text(default)}.")
        )
        return fallback, problems
    if (end - start).days + 1 > max_days:
        start = end - timedelta(days=max_days - 1)
        problems.append(
            RangeProblem(
                "to",
                f"A range covers at most {max_days} days.",
                f"A range covers at most {max_days} days; it now starts {start}.",
            )
        )
    chosen = DayRange(start, end)
    for preset in PRESET_LABELS:  # a custom range equal to a preset is that preset
        if preset_range(preset, today) == DayRange(start, end, preset):
            return DayRange(start, end, preset), problems
    return chosen, problems


def _default_text(default: str) -> str:
    name = PRESET_LABELS[default]
    return f"the last {name}" if default.endswith("d") else name.lower()


@dataclass(frozen=True)
class PresetLink:
    key: str
    label: str
    href: str
    current: bool


@dataclass(frozen=True)
class RangeControl:
    """What ``templates/_time_range.html`` draws: the preset links, the custom form (with the
    page's other parameters as hidden fields, so filters survive a range change) and the
    range's label."""

    range: DayRange
    presets: list[PresetLink]
    hidden: list[tuple[str, str]]
    problems: list[str]
    # What the label says instead of ``range.label`` (a page-specific preset such as the
    # health pages' "Last 24 hours" is not a range of days).
    label: str = ""


def control(
    params: QueryDict,
    chosen: DayRange,
    problems: list[str] | None = None,
    *,
    extra: Sequence[tuple[str, str]] = (),
    current: str = "",
    label: str = "",
) -> RangeControl:
    """The control for a page whose query is ``params``: each preset keeps the page's other
    parameters (filters, grouping) and drops its list position. ``extra`` are a page's own
    presets (key, label) shown before the shared ones (the health pages' last hour and 24
    hours); ``current`` names the one chosen (then ``label`` says what it shows)."""
    kept = [
        (name, value)
        for name, values in params.lists()
        if name not in RANGE_PARAMS and name not in POSITION_PARAMS
        for value in values
    ]
    chosen_key = current or chosen.preset
    presets = [
        PresetLink(key, text, "?" + urlencode([*kept, ("range", key)]), key == chosen_key)
        for key, text in [*extra, *PRESET_LABELS.items()]
    ]
    return RangeControl(chosen, presets, kept, list(problems or []), label if current else "")


def with_range(chosen: DayRange, **params: str) -> str:
    """A query string (without ``?``) of ``params`` (empty ones left out) and the range."""
    return urlencode({**{k: v for k, v in params.items() if v}, **chosen.query()})


RUNS_PATH = "/runs/"


def runs_href(chosen: DayRange | None, **filters: str) -> str:
    """Run history filtered by ``filters`` (empty ones left out) over ``chosen``'s days: the
    target of every drill-down. Callers check the user may open run history first (a link that
    answers 403 is a dead end)."""
    query = {k: v for k, v in filters.items() if v}
    if chosen is not None:
        query.update(chosen.days_query())
    return (
        f"{RUNS_PATH}?{'&'.join(_query_pair(k, str(v)) for k, v in query.items())}"
        if query
        else RUNS_PATH
    )


@lru_cache(maxsize=4096)
def _query_pair(key: str, value: str) -> str:
    """``key=value`` as ``urlencode`` writes it: a report page links hundreds of cells to run
    history with the same few days, statuses and names, so each pair is encoded once."""
    return urlencode({key: value})


def calendar_month(chosen: DayRange, today: date) -> date | None:
    """The month ``chosen`` is, when it is one calendar month (this month counts to ``today``):
    the ranges whose allocated infrastructure can be shown, since it is allocated per month."""
    first = periods.month_of(chosen.start)
    if chosen.start != first:
        return None
    this_month = first == periods.month_of(today) and chosen.end == today
    return first if this_month or chosen.end == periods.month_last_day(first) else None


def period_days(key: str, grain: str, within: DayRange) -> DayRange:
    """The days of the report period ``key`` (``periods.period_key`` of ``grain``) that lie in
    ``within``: what a chart's bar for that period stands for."""
    if grain == "month":
        first = periods.month_parse(key)
        last = periods.month_last_day(first)
    else:
        first = periods.day_parse(key)
        last = first + timedelta(days=6) if grain == "week" else first
    return DayRange(max(first, within.start), min(last, within.end))


def span_text(chosen: DayRange) -> str:
    """The range's days in a few words for a card's heading: ``1 Nov to 30 Nov``, ``30 Nov``,
    ``28 Dec 2026 to 3 Jan 2027`` (the year only when the range crosses one)."""
    form = "{d.day} {d:%b} {d.year}" if chosen.start.year != chosen.end.year else "{d.day} {d:%b}"
    first, last = form.format(d=chosen.start), form.format(d=chosen.end)
    return first if chosen.length == 1 else f"{first} to {last}"
