"""The charts' JSON, built directly, is the JSON plotly's own figure objects produced for the same
calls (the path the pages took before: ``go.Figure`` with ``add_bar``/``add_scatter``/
``update_layout``, then ``to_plotly_json``), for representative inputs of every chart: no
property, value, nesting or order of traces differs, so every chart draws as it did."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import plotly.graph_objects as go
import pytest
from plotly.utils import PlotlyJSONEncoder

from factory_portal import charts
from usage.selectors.reporting import PeriodRuns
from usage.selectors.run_trace import WaterfallRow

DAYS = [date(2026, 11, 1) + timedelta(days=n) for n in range(5)]
T0 = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


class _PlotlyFigure:
    """The old path: plotly's validating figure, driven by the same calls ``charts`` makes.
    Traces a chart appends as JSON (``figure.data.append``) are added as plotly traces."""

    def __init__(self) -> None:
        self.figure = go.Figure()
        self.data: list[dict[str, Any]] = []

    def add_bar(self, **properties: Any) -> None:
        self.figure.add_bar(**properties)

    def add_scatter(self, **properties: Any) -> None:
        self.figure.add_scatter(**properties)

    def update_layout(self, **properties: Any) -> None:
        self.figure.update_layout(**properties)


def _plotly_json(figure: _PlotlyFigure) -> dict[str, Any]:
    for trace in figure.data:
        figure.figure.add_trace(trace)
    return _plain(figure.figure.to_plotly_json())


def _plain(figure: dict[str, Any]) -> dict[str, Any]:
    """JSON as the page receives it, without plotly's default template (plotly.js applies its
    own defaults; the portal never sent the template)."""
    plain = json.loads(json.dumps(figure, cls=PlotlyJSONEncoder))
    plain["layout"].pop("template", None)
    return plain


def _period(by_status: dict[str, int], p50: int | None, p95: int | None) -> PeriodRuns:
    return PeriodRuns(by_status=defaultdict(int, by_status), p50_ms=p50, p95_ms=p95)


REPORT = SimpleNamespace(
    periods={
        "2026-11-01": _period({"Succeeded": 40, "Failed": 3, "Running": 1}, 61_000, 240_000),
        "2026-11-02": _period({"Succeeded": 12, "Cancelled": 2}, 45_500, 120_000),
        "2026-11-03": _period({}, None, None),
    }
)
ROWS = [
    WaterfallRow("plan #1", 0, "job", T0, 12_500, "Succeeded", False, ""),
    WaterfallRow("POST api.example <b>", 1, "external", T0, 420, "ok", False, ""),
    WaterfallRow("gpt-4.1 chat", 1, "llm", T0 + timedelta(seconds=1), 3_100, "error", True, "429"),
    WaterfallRow("implement #1", 0, "job", T0 + timedelta(seconds=13), 95_000, "Failed", True, "x"),
    WaterfallRow("implement #2", 0, "job", T0 + timedelta(minutes=2), 30, "Running", False, ""),
]
FORECAST = [
    SimpleNamespace(day=d, mean=Decimal("3.10"), lo80=Decimal("2.05"), hi80=Decimal("4.333"))
    for d in DAYS[3:]
]

# (name, the chart's function, its arguments): every chart built with _Figure, with and without
# optional parts (links, forecasts), empty inputs and client text that plotly reads as markup.
CASES: list[tuple[str, Any, tuple[Any, ...], dict[str, Any]]] = [
    (
        "daily cost with forecast and links",
        charts.daily_cost_chart,
        (
            {"web": {DAYS[0]: Decimal("1.25"), DAYS[2]: Decimal("0.004")}, "api <i>": {}},
            DAYS,
            FORECAST,
        ),
        {"links": {"web": [f"/runs/?d={d}" for d in DAYS], "api <i>": [""] * 5}},
    ),
    ("daily cost, nothing", charts.daily_cost_chart, ({}, DAYS), {}),
    (
        "trend by model with links and periods",
        charts.trend_chart,
        ({"gpt": {"2026-11-01": Decimal("2.5")}, "claude": {"2026-11-02": Decimal("0.1")}},),
        {
            "links": {"gpt": {"2026-11-01": "/usage/?model=gpt"}},
            "periods": ["2026-11-01", "2026-11-02", "2026-11-03"],
        },
    ),
    ("trend, zero", charts.trend_chart, ({"web": {"2026-11": Decimal(0)}},), {}),
    (
        "distribution",
        charts.distribution_chart,
        ([(Decimal("0.10"), Decimal("0.55"), 7), (Decimal("0.55"), Decimal("1.00"), 0)],),
        {},
    ),
    ("distribution, none", charts.distribution_chart, ([],), {}),
    (
        "run volume with links",
        charts.run_volume_chart,
        (REPORT,),
        {
            "links": {
                p: {s: f"/runs/?p={p}&s={s}" for s in charts.STATUS_COLOURS} for p in REPORT.periods
            }
        },
    ),
    ("run volume", charts.run_volume_chart, (REPORT,), {}),
    (
        "success and duration with links",
        charts.success_duration_chart,
        (REPORT,),
        {"links": {p: f"/runs/?p={p}" for p in REPORT.periods}},
    ),
    (
        "success and duration, empty",
        charts.success_duration_chart,
        (SimpleNamespace(periods={}),),
        {},
    ),
    (
        "tokens",
        charts.tokens_chart,
        ({"gpt": {"2026-11-01": 1_200_000, "2026-11-02": 5}, "m<b>": {"2026-11-02": 7}},),
        {},
    ),
    (
        "error trend with links",
        charts.error_trend_chart,
        (DAYS, {"GitError": [1, 0, 2, 0, 0], "Timeout <x>": [0, 0, 0, 0, 9]}),
        {"links": {"GitError": ["/a", "", "/c", "", ""], "Timeout <x>": [""] * 5}},
    ),
    ("error trend, none", charts.error_trend_chart, (DAYS, {}), {}),
    (
        "step rates",
        charts.step_rates_chart,
        ([("build <b>", Decimal("0.125"), Decimal("0.8")), ("test", None, None)],),
        {"links": ["/steps/build", "/steps/test"]},
    ),
    ("run waterfall", charts.run_waterfall, (ROWS,), {}),
    ("run waterfall, no spans", charts.run_waterfall, ([],), {}),
    (
        "cost change",
        charts.cost_change_chart,
        (
            ("Before", Decimal("100.00")),
            [("Volume", Decimal("12.50")), ("Cache <b>", Decimal("-2.25"))],
            ("After", Decimal("110.25")),
        ),
        {},
    ),
    (
        "burn-down with forecast",
        charts.burndown_chart,
        (
            [(DAYS[0], Decimal("1000")), (DAYS[1], Decimal("930.5"))],
            [(DAYS[2], Decimal("870")), (DAYS[3], Decimal("800"))],
            [(DAYS[2], Decimal("850")), (DAYS[3], Decimal("760"))],
            [(DAYS[2], Decimal("890")), (DAYS[3], Decimal("840"))],
        ),
        {},
    ),
    ("burn-down, spent", charts.burndown_chart, ([(DAYS[0], Decimal(0))],), {}),
    (
        "cache hits",
        charts.cache_hit_chart,
        ({"gpt": {"2026-11-02": Decimal("0.5"), "2026-11-01": Decimal("0.125")}},),
        {},
    ),
]


@pytest.mark.parametrize(
    ("function", "args", "kwargs"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_direct_json_equals_plotly_figure_json(monkeypatch, function, args, kwargs):
    direct = _plain(function(*args, **kwargs))
    monkeypatch.setattr(charts, "_Figure", _PlotlyFigure)
    monkeypatch.setattr(charts, "_json", _plotly_json)
    assert direct == function(*args, **kwargs)


TIME_LINES = [
    ({"x": ["2026-11-01 10:00", "2026-11-01 11:00"], "lines": {"cpu": [0.51234, None]}}, {}),
    (
        {"x": ["2026-11-01", "2026-11-02"], "lines": {"ok": [3, 4], "failed <b>": [1, 0]}},
        {"stacked": True, "colours": {"ok": "#1a7f37"}, "y_title": "jobs"},
    ),
    (
        {"x": ["2026-11-01"], "lines": {"busy": [55.5]}},
        {"percent": True, "colours": {"busy": "#0969da"}, "yaxis_format": "~s", "y_title": "%"},
    ),
]


@pytest.mark.parametrize(("data", "options"), TIME_LINES)
def test_time_lines_is_what_plotly_makes_of_it(data, options):
    """``time_lines`` never went through ``_Figure``: plotly's figure reads its JSON back
    unchanged (every property known, every value already in plotly's form)."""
    figure = charts.time_lines(data["x"], data["lines"], **{"y_title": "v", **options})
    assert _plain(go.Figure(figure).to_plotly_json()) == _plain(figure)


@pytest.mark.parametrize(
    ("function", "args", "kwargs"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_direct_json_reads_back_unchanged(function, args, kwargs):
    figure = _plain(function(*args, **kwargs))
    assert _plain(go.Figure(figure).to_plotly_json()) == figure
