"""The one time-range control: presets, custom days, bad input, links that keep filters."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from django.http import QueryDict

from factory_portal import ranges

TODAY = date(2026, 11, 30)


def parse(query: str, **options):
    return ranges.range_parse(QueryDict(query), today=TODAY, **options)


def test_presets_end_today_and_last_month_is_whole():
    assert parse("range=7d")[0] == ranges.DayRange(date(2026, 11, 24), TODAY, "7d")
    assert parse("range=today")[0].days == [TODAY]
    assert parse("range=this_month")[0].start == date(2026, 11, 1)
    last = parse("range=last_month")[0]
    assert (last.start, last.end, last.length) == (date(2026, 10, 1), date(2026, 10, 31), 31)
    assert parse("range=90D")[0].length == 90  # case-insensitive


def test_default_and_custom():
    chosen, problems = parse("")
    assert (chosen.preset, chosen.length, problems) == ("30d", 30, [])
    chosen, problems = parse("range=custom&from=2026-10-03&to=2026-10-09")
    assert (chosen.start, chosen.end, chosen.preset, problems) == (
        date(2026, 10, 3),
        date(2026, 10, 9),
        "custom",
        [],
    )
    # from/to alone read as custom; a custom range equal to a preset is that preset
    assert parse("from=2026-11-24&to=2026-11-30")[0].preset == "7d"
    assert parse("from=2026-11-24")[0].end == TODAY


def test_bad_input_is_explained_and_replaced_by_the_default():
    for query, words in [
        ("range=fortnight", "not a range"),
        ("range=custom&from=2026-13-01", "not a date"),
        ("range=custom&from=2026-11-10&to=2026-11-01", "after the end"),
        ("range=custom", "needs from or to"),
    ]:
        chosen, problems = parse(query)
        assert chosen.preset == "30d", query
        assert len(problems) == 1 and words in problems[0], (query, problems)
    chosen, problems = parse("from=2020-01-01&to=2026-11-30", max_days=90)
    assert chosen.length == 90 and "at most 90 days" in problems[0]


def test_bounds_are_the_tenants_midnights():
    berlin = ZoneInfo("Europe/Berlin")
    start, end = ranges.DayRange(date(2026, 10, 24), date(2026, 10, 25)).bounds(berlin)
    assert start == datetime(2026, 10, 23, 22, tzinfo=UTC)
    assert end == datetime(2026, 10, 25, 23, tzinfo=UTC)  # the day of the DST change has 25 h


def test_month_range_and_previous():
    assert ranges.month_range(date(2026, 10, 1), TODAY).preset == "last_month"
    assert ranges.month_range(date(2026, 11, 1), TODAY).end == TODAY
    sept = ranges.month_range(date(2026, 9, 1), TODAY)
    assert (sept.start, sept.end, sept.preset) == (date(2026, 9, 1), date(2026, 9, 30), "custom")
    assert ranges.DayRange(date(2026, 11, 24), TODAY).previous() == ranges.DayRange(
        date(2026, 11, 17), date(2026, 11, 23)
    )


def test_control_keeps_filters_and_drops_position():
    params = QueryDict("project=alpha&grain=week&range=7d&after=abc&from=x")
    chosen, _ = ranges.range_parse(params, today=TODAY)
    control = ranges.control(params, chosen)
    links = {p.key: p.href for p in control.presets}
    assert links["90d"] == "?project=alpha&grain=week&range=90d"
    assert [p.key for p in control.presets if p.current] == ["7d"]
    assert control.hidden == [("project", "alpha"), ("grain", "week")]


def test_runs_href_carries_days_and_filters():
    chosen = ranges.DayRange(date(2026, 11, 1), date(2026, 11, 2))
    href = ranges.runs_href(chosen, project="a b", status="Failed", template="")
    assert href == "/runs/?project=a+b&status=Failed&from=2026-11-01&to=2026-11-02"
    assert ranges.runs_href(None) == "/runs/"
    assert chosen.label == "1 Nov 2026 to 2 Nov 2026"
    assert ranges.preset_range("7d", TODAY).label == "Last 7 days (24 Nov 2026 to 30 Nov 2026)"


def test_a_page_adds_its_own_presets_before_the_shared_ones() -> None:
    today = date(2026, 11, 30)
    params = QueryDict("range=1h&pool=gpu")
    chosen = ranges.preset_range("today", today)
    made = ranges.control(
        params,
        chosen,
        extra=[("1h", "1 hour"), ("24h", "24 hours")],
        current="1h",
        label="Last 1 hour",
    )
    assert [p.key for p in made.presets][:3] == ["1h", "24h", "today"]
    assert [p.key for p in made.presets if p.current] == ["1h"]
    assert made.presets[1].href == "?pool=gpu&range=24h" and made.label == "Last 1 hour"
    shared = ranges.control(
        QueryDict("range=7d"), ranges.preset_range("7d", today), extra=[("1h", "1 hour")]
    )
    assert [p.key for p in shared.presets if p.current] == ["7d"] and shared.label == ""


def test_calendar_month_is_a_whole_month_or_this_month_to_today():
    def month(start, end):
        return ranges.calendar_month(ranges.DayRange(start, end), TODAY)

    assert month(date(2026, 10, 1), date(2026, 10, 31)) == date(2026, 10, 1)
    assert ranges.calendar_month(ranges.preset_range("this_month", TODAY), TODAY) == date(
        2026, 11, 1
    )
    assert month(date(2026, 11, 1), date(2026, 11, 29)) is None  # not to today: a range
    assert month(date(2026, 10, 2), date(2026, 10, 31)) is None
    assert month(date(2026, 9, 1), date(2026, 10, 31)) is None  # two months: per month


def test_period_days_are_clipped_to_the_range():
    within = ranges.DayRange(date(2026, 10, 1), date(2026, 10, 31))
    week = ranges.period_days("2026-09-28", "week", within)
    assert (week.start, week.end) == (date(2026, 10, 1), date(2026, 10, 4))
    day = ranges.period_days("2026-10-09", "day", within)
    assert (day.start, day.end) == (date(2026, 10, 9), date(2026, 10, 9))
    month = ranges.period_days("2026-10", "month", ranges.DayRange(date(2026, 10, 5), TODAY))
    assert (month.start, month.end) == (date(2026, 10, 5), date(2026, 10, 31))


def test_span_text_is_short():
    assert ranges.span_text(ranges.DayRange(date(2026, 11, 1), TODAY)) == "1 Nov to 30 Nov"
    assert ranges.span_text(ranges.DayRange(TODAY, TODAY)) == "30 Nov"
    crossing = ranges.DayRange(date(2026, 12, 28), date(2027, 1, 3))
    assert ranges.span_text(crossing) == "28 Dec 2026 to 3 Jan 2027"


def test_a_preset_longer_than_the_page_allows_is_cut_with_a_reason():
    chosen, problems = parse("range=90d", max_days=31)
    assert (chosen.start, chosen.end, chosen.length) == (date(2026, 10, 31), TODAY, 31)
    assert "at most 31 days" in problems[0]
