"""The charts' JSON is built directly (not through plotly's figure objects): plotly itself must
accept every figure, titles must be objects (plotly.js 3 ignores a title given as text) and the
drill-down links sit in customdata."""

from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import plotly.graph_objects as go

from factory_portal import charts

DAYS = [date(2026, 11, 1) + timedelta(days=n) for n in range(3)]


def _valid(figure: dict) -> dict:
    go.Figure(figure)  # raises on any property plotly does not know, or a value of a wrong type
    for name, axis in figure["layout"].items():
        if name.startswith(("xaxis", "yaxis")) and "title" in axis:
            assert isinstance(axis["title"], dict), name
    return figure


def test_cost_charts_with_forecast_links_and_money_axes():
    forecast = [SimpleNamespace(day=DAYS[2], mean=Decimal(2), lo80=Decimal(1), hi80=Decimal(3))]
    figure = _valid(
        charts.daily_cost_chart(
            {"web": {DAYS[0]: Decimal("1.25")}},
            DAYS,
            forecast,
            links={"web": ["/runs/?a", "/runs/?b", "/runs/?c"]},
        )
    )
    bar = figure["data"][0]
    assert bar["type"] == "bar" and bar["y"] == [1.25, 0.0, 0.0]
    assert bar["customdata"] == ["/runs/?a", "/runs/?b", "/runs/?c"]
    assert figure["layout"]["yaxis"]["tickprefix"] == "$"
    assert "customdata" not in figure["data"][1]  # None is left out, as plotly would
    empty = _valid(charts.trend_chart({"web": {"2026-11-01": Decimal(0)}}))
    assert empty["layout"]["yaxis"]["range"] == [0, 1]  # no "$-1" axis for nothing


def test_count_charts():
    _valid(charts.distribution_chart([(Decimal(0), Decimal(1), 3), (Decimal(1), Decimal(2), 1)]))
    tokens = _valid(charts.tokens_chart({"gpt": {"2026-11-01": 10}}))
    assert tokens["data"][0]["name"] == "gpt"
    errors = _valid(charts.error_trend_chart(DAYS, {"GitError": [1, 0, 2]}))
    assert errors["data"][0]["type"] == "bar"
    steps = _valid(charts.step_rates_chart([("build <b>", Decimal("0.1"), Decimal("0.8"))]))
    assert steps["data"][0]["x"] == ["build &lt;b&gt;"]  # client text escaped for plotly


def test_cost_change_waterfall_starts_steps_and_totals():
    figure = _valid(
        charts.cost_change_chart(
            ("Before", Decimal("100.00")),
            [("Volume", Decimal("12.50")), ("Cache <b>", Decimal("-2.25"))],
            ("After", Decimal("110.25")),
        )
    )
    trace = figure["data"][0]
    assert trace["type"] == "waterfall"
    assert trace["measure"] == ["absolute", "relative", "relative", "total"]
    assert trace["y"] == [100.0, 12.5, -2.25, 110.25]
    assert trace["x"][2] == "Cache &lt;b&gt;"


def test_day_charts_put_days_on_a_category_axis():
    """A lone day's bars on a date axis are a millisecond wide (the overview on the 1st of a
    month drew only the forecast) and one day's axis is labelled in hours: days are categories,
    the range's days then the forecast's, in order."""
    day = DAYS[0]
    forecast = [
        SimpleNamespace(day=d, mean=Decimal(2), lo80=Decimal(1), hi80=Decimal(3)) for d in DAYS
    ]
    overview = _valid(charts.daily_cost_chart({"web": {day: Decimal("8.31")}}, [day], forecast))
    assert overview["layout"]["xaxis"]["type"] == "category"
    assert overview["layout"]["xaxis"]["categoryarray"] == [str(d) for d in DAYS]
    costs = _valid(charts.trend_chart({"web": {"2026-12": Decimal(8)}}, periods=["2026-12"]))
    assert costs["layout"]["xaxis"]["type"] == "category"
    assert costs["layout"]["xaxis"]["categoryarray"] == ["2026-12"]
    errors = _valid(charts.error_trend_chart([day], {"GitError": [3]}))
    assert errors["layout"]["xaxis"]["categoryarray"] == [str(day)]
    # 90 days' labels: thinned and given room, not stood on end and cut off.
    assert overview["layout"]["xaxis"]["nticks"] == charts.PERIOD_LABELS_MAX
    assert overview["layout"]["xaxis"]["automargin"] is True


def test_a_value_without_neighbours_is_marked_on_a_line_chart():
    """A line draws nothing for a lone value (between gaps, or alone at an end): those get a
    marker, in the series' colour; connected values get none, and a chart without lone values
    stays a plain line."""
    x = ["2026-11-01 10:00", "2026-11-01 11:00", "2026-11-01 12:00", "2026-11-01 13:00"]
    figure = charts.time_lines(
        x,
        {
            "pool a": [5.0, None, 1.0, 2.0],
            "pool b": [1.0, 2.0, 3.0, None],
            "c": [None, 7.0, None, 4.0],
        },
        y_title="errors/min",
        colours={"c": "#123456"},
    )
    a, b, c = _valid(figure)["data"]
    assert (a["mode"], a["marker"]["size"]) == ("lines+markers", [6, 0, 0, 0])
    assert b["mode"] == "lines" and "marker" not in b
    assert c["marker"] == {"size": [0, 6, 0, 6], "color": "#123456"}
