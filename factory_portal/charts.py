"""Plotly figures for the pages, as plain JSON for ``Plotly.newPlot`` (plotly.js is served from
the installed package's static files, so charts render offline)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

MARGIN = {"l": 50, "r": 20, "t": 10, "b": 40}
LAYOUT = {
    "margin": MARGIN,
    "height": 320,
    "legend": {"orientation": "h", "y": -0.2},
    "plot_bgcolor": "#fff",
    "paper_bgcolor": "#fff",
}
# Percent axes show 0-100 in steps of 20 with a little room above, so a point at 100% is drawn
# whole rather than cut by the plot's edge.
PERCENT_RANGE = [0, 104]
STATUS_COLOURS = {
    "Succeeded": "#1a7f37",
    "Failed": "#c62828",
    "Cancelled": "#8c959f",
    "Running": "#0969da",
    "Requested": "#9a6700",
}


# Money on a chart: the axis in dollars with clean ticks (never below $0, even when every value
# is zero: plotly would draw -1 to 1), the hover to the cent (amounts on pages are Decimal text;
# a chart's float only draws).
MONEY_AXIS: dict[str, Any] = {
    "title": {"text": "USD"},
    "tickprefix": "$",
    "tickformat": ",.2~f",
    "rangemode": "tozero",
}
MONEY_HOVER = "%{fullData.name}: $%{y:,.2f}<extra>%{x}</extra>"
COUNT_AXIS: dict[str, Any] = {"rangemode": "tozero", "tickformat": ",d"}


def axis_for(axis: dict[str, Any], values: Sequence[float | None]) -> dict[str, Any]:
    """``axis`` with a fixed 0 to 1 range when nothing above zero is drawn (plotly's autorange
    would start at -1 and label it "$-1")."""
    if any(v for v in values if v):
        return dict(axis)
    return {**axis, "range": [0, 1], "autorange": False}


def linked(trace: dict[str, Any], hrefs: Sequence[str] | None) -> None:
    """Make each point of ``trace`` (a figure's trace as JSON) open its same-site path in
    ``hrefs`` when clicked (``static/js/portal.js`` follows a point's customdata): the
    drill-down of a chart. ``None`` (a role that may not open the target) leaves it as is."""
    if hrefs is not None:
        trace["customdata"] = list(hrefs)


class _Figure:
    """The part of plotly's ``go.Figure`` the charts here use (``add_bar``, ``add_scatter``,
    ``update_layout``), building the figure's JSON directly: plotly's figure objects validate
    every value, which cost a chart page tens of milliseconds (a third of the usage page). What
    plotly.py would also have done is done here: ``None`` values are left out, ``marker_color``
    means ``{"marker": {"color": …}}``, and a title given as text becomes ``{"text": …}``
    (plotly.js 3 reads only the latter)."""

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}

    def add_bar(self, **properties: Any) -> None:
        self.data.append(_trace("bar", properties))

    def add_scatter(self, **properties: Any) -> None:
        self.data.append(_trace("scatter", properties))

    def update_layout(self, **properties: Any) -> None:
        for name, value in properties.items():
            value = (
                _titled(value)
                if name.endswith("axis") or name.startswith(("xaxis", "yaxis"))
                else value
            )
            current = self.layout.get(name)
            if isinstance(current, dict) and isinstance(value, dict):
                self.layout[name] = {**current, **value}
            else:
                self.layout[name] = value
        if isinstance(self.layout.get("title"), str):
            self.layout["title"] = {"text": self.layout["title"]}


def _trace(kind: str, properties: dict[str, Any]) -> dict[str, Any]:
    trace: dict[str, Any] = {"type": kind}
    for name, value in properties.items():
        if value is None:
            continue
        head, _, rest = name.partition("_")
        if rest and head in ("marker", "line"):  # plotly's "magic underscore"
            trace.setdefault(head, {})[rest] = value
        else:
            trace[name] = value
    return trace


def _titled(axis: Any) -> Any:
    if isinstance(axis, dict) and isinstance(axis.get("title"), str):
        return {**axis, "title": {"text": axis["title"]}}
    return axis


def _json(figure: _Figure) -> dict[str, Any]:
    return {"data": figure.data, "layout": figure.layout}


def _label(text: str) -> str:
    """Client text (ids, model and template names) as a plotly label. Plotly reads labels as
    pseudo-HTML (``<b>``, ``<a href>``, entities): escaped, they are shown as sent, and a job id
    cannot put a link into the page."""
    return html.escape(text, quote=False)  # plotly decodes &amp; &lt; &gt;, not &quot;


def _plotted(value: Decimal | str) -> float:
    """A number to draw (charts only; amounts shown as text stay Decimal)."""
    return float(value)


class ForecastPoint(Protocol):
    """A forecast day as the chart draws it (billing's ``ForecastDay`` is one)."""

    @property
    def day(self) -> date: ...
    @property
    def mean(self) -> Decimal: ...
    @property
    def lo80(self) -> Decimal: ...
    @property
    def hi80(self) -> Decimal: ...


def daily_cost_chart(
    by_project: dict[str, dict[date, Decimal]],
    days: list[date],
    forecast: Sequence[ForecastPoint] | None = None,
    links: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Daily AI cost stacked by project, with the forecast and its 80% band after today;
    ``links`` (per project, one path per day) make each bar open its drill-down."""
    figure = _Figure()
    drawn: list[float | None] = []
    for project, values in sorted(by_project.items()):
        y = [_plotted(values.get(d, Decimal(0))) for d in days]
        drawn.extend(y)
        figure.add_bar(
            name=_label(project),
            x=[str(d) for d in days],
            y=y,
            hovertemplate=MONEY_HOVER,
            customdata=links.get(project) if links else None,
        )
    if forecast:
        x = [str(point.day) for point in forecast]
        figure.add_scatter(
            x=x,
            y=[_plotted(point.hi80) for point in forecast],
            mode="lines",
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
        )
        figure.add_scatter(
            x=x,
            y=[_plotted(point.lo80) for point in forecast],
            mode="lines",
            fill="tonexty",
            fillcolor="rgba(48,86,211,0.15)",
            line={"width": 0},
            name="forecast 80% interval",
        )
        figure.add_scatter(
            x=x,
            y=[_plotted(point.mean) for point in forecast],
            mode="lines",
            line={"color": "#3056d3", "dash": "dash"},
            name="forecast",
            hovertemplate=MONEY_HOVER,
        )
        drawn.extend(_plotted(point.hi80) for point in forecast)
    # Days as categories: on a date axis a lone bar is a millisecond wide (the first of a month's
    # "this month" showed only the forecast) and a one-day axis is labelled in hours.
    shown = sorted({str(d) for d in days} | {str(point.day) for point in forecast or ()})
    figure.update_layout(
        barmode="stack", yaxis=axis_for(MONEY_AXIS, drawn), xaxis=_period_axis(shown), **LAYOUT
    )
    return _json(figure)


KIND_COLOURS = {"external": "#6e7781", "llm": "#8250df"}


def run_waterfall(rows: list[Any]) -> dict[str, Any]:
    """A trace view like Jaeger's: one bar per job attempt (coloured by status) with its external
    and LLM calls indented under it, each bar labelled with its duration; spans that failed or
    reported an error get a red outline and a red cross at their end. ``rows`` are
    ``usage.selectors.run_trace.WaterfallRow``s in display order."""
    figure = _Figure()
    names = [_label(("\u21b3 " if r.depth else "") + r.label) for r in rows]

    def bars(selected: list[int], name: str, colour: str) -> None:
        if not selected:
            return
        figure.add_bar(
            name=name,
            orientation="h",
            marker={
                "color": colour,
                "line": {
                    "color": ["#c62828" if rows[i].error else colour for i in selected],
                    "width": [2 if rows[i].error else 0 for i in selected],
                },
            },
            y=selected,
            base=[rows[i].start.isoformat() for i in selected],
            x=[max(rows[i].duration_ms, 1) for i in selected],
            text=[_duration_text(rows[i].duration_ms) for i in selected],
            textposition="outside",
            cliponaxis=False,
            customdata=[[names[i], _label(rows[i].detail or rows[i].status)] for i in selected],
            hovertemplate="%{customdata[0]}: %{text}<br>%{customdata[1]}<extra></extra>",
        )

    for status, colour in STATUS_COLOURS.items():
        bars(
            [i for i, r in enumerate(rows) if r.kind == "job" and r.status == status],
            f"job {status.lower()}",
            colour,
        )
    for kind, colour in KIND_COLOURS.items():
        bars(
            [i for i, r in enumerate(rows) if r.kind == kind],
            "LLM call" if kind == "llm" else "external call",
            colour,
        )
    errors = [i for i, r in enumerate(rows) if r.error]
    if errors:
        figure.add_scatter(
            name="error",
            mode="markers",
            y=errors,
            x=[
                (rows[i].start + timedelta(milliseconds=rows[i].duration_ms)).isoformat()
                for i in errors
            ],
            marker={"symbol": "x", "color": "#c62828", "size": 9},
            hoverinfo="skip",
        )
    figure.update_layout(
        xaxis={"type": "date"},
        yaxis={
            "autorange": "reversed",
            "tickmode": "array",
            "tickvals": list(range(len(rows))),
            "ticktext": names,
            "automargin": True,
        },
        barmode="overlay",
        **{**LAYOUT, "height": 80 + 24 * max(len(rows), 1)},
    )
    return _json(figure)


def _duration_text(ms: int) -> str:
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms // 60_000} min {ms % 60_000 // 1000} s"


def trend_chart(
    series: dict[str, dict[str, Decimal]],
    links: dict[str, dict[str, str]] | None = None,
    periods: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Cost per period, stacked by the chosen dimension; ``links`` (per name, per period) make
    each bar open its drill-down. ``periods`` are the x axis (every period of the chosen range,
    so the chart spans it even where nothing was spent); by default the periods with cost."""
    periods = (
        list(periods)
        if periods is not None
        else sorted({p for values in series.values() for p in values})
    )
    figure = _Figure()
    drawn: list[float | None] = []
    for name, values in sorted(series.items()):
        y = [_plotted(values.get(p, Decimal(0))) for p in periods]
        drawn.extend(y)
        hrefs = links.get(name) if links else None
        figure.add_bar(
            name=_label(name),
            x=periods,
            y=y,
            hovertemplate=MONEY_HOVER,
            customdata=[hrefs.get(p, "") for p in periods] if hrefs else None,
        )
    figure.update_layout(
        barmode="stack", yaxis=axis_for(MONEY_AXIS, drawn), xaxis=_period_axis(periods), **LAYOUT
    )
    return _json(figure)


def distribution_chart(bins: list[tuple[Decimal, Decimal, int]]) -> dict[str, Any]:
    """How much runs cost: runs per cost bin (bins computed server-side, exact counts)."""
    figure = _Figure()
    figure.add_bar(
        x=[_plotted((low + high) / 2) for low, high, _ in bins],
        y=[count for _, _, count in bins],
        width=[_plotted(high - low) for low, high, _ in bins],
        customdata=[[f"${low:.2f}", f"${high:.2f}"] for low, high, _ in bins],
        hovertemplate="%{customdata[0]} to %{customdata[1]}: %{y} runs<extra></extra>",
        name="runs",
        marker_color="#3056d3",
    )
    figure.update_layout(
        xaxis={"title": "cost per run (USD)", "tickprefix": "$"}, yaxis={"title": "runs"}, **LAYOUT
    )
    return _json(figure)


def run_volume_chart(report: Any, links: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """Runs requested per period, stacked by status (a ``usage.selectors.reporting`` report);
    ``links`` (per period, per status) make each bar open those runs."""
    periods = list(report.periods)
    figure = _Figure()
    drawn: list[float | None] = []
    for status, colour in STATUS_COLOURS.items():
        counts = [report.periods[p].by_status.get(status, 0) for p in periods]
        if any(counts):
            drawn.extend(counts)
            figure.add_bar(
                name=status,
                x=periods,
                y=counts,
                marker_color=colour,
                hovertemplate=f"{status}: %{{y:,d}} runs<extra>%{{x}}</extra>",
                customdata=[links[p][status] for p in periods] if links else None,
            )
    figure.update_layout(
        barmode="stack",
        yaxis=axis_for({**COUNT_AXIS, "title": {"text": "runs"}}, drawn),
        xaxis=_period_axis(periods),
        **LAYOUT,
    )
    return _json(figure)


PERIOD_LABELS_MAX = 16


def _period_axis(periods: Sequence[str]) -> dict[str, Any]:
    """Report periods (days, Mondays or ``YYYY-MM``) as categories: one tick per period, never
    an hour of a day."""
    return {
        "type": "category",
        "categoryorder": "array",
        "categoryarray": list(periods),
        # At most this many labels (plotly skips between them): 90 days' labels stood on end,
        # were cut off and ran into the legend.
        "nticks": PERIOD_LABELS_MAX,
        "automargin": True,
    }


NICE_MINUTES = (0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 720, 1440)


def minutes_axis(values: Sequence[float | None], *, ticks: int = 5) -> dict[str, Any]:
    """A duration axis in minutes from 0 with round ticks (1, 2, 5, 10, 15, 30 minutes, hours):
    never 12.1 / 24.2 / 36.3."""
    top = max((v for v in values if v), default=0.0)
    dtick = next((d for d in NICE_MINUTES if top / d <= ticks), NICE_MINUTES[-1])
    axis: dict[str, Any] = {
        "title": {"text": "minutes"},
        "rangemode": "tozero",
        "tick0": 0,
        "dtick": dtick,
        "ticksuffix": " min",
    }
    if not top:
        axis.update(range=[0, 1], autorange=False)
    return axis


def success_duration_chart(report: Any, links: dict[str, str] | None = None) -> dict[str, Any]:
    """Success rate (left axis, %) and median / p95 run duration in minutes (right axis);
    ``links`` (per period) make each point open the period's runs."""
    periods = list(report.periods)

    def minutes(value: int | None) -> float | None:
        return None if value is None else round(value / 60000, 2)

    rates = [report.periods[p].success_rate for p in periods]
    customdata = [links[p] for p in periods] if links else None
    figure = _Figure()
    figure.add_scatter(
        name="success rate (%)",
        x=periods,
        y=[None if r is None else float(r) for r in rates],
        mode="lines+markers",
        line={"color": "#1a7f37"},
        hovertemplate="success rate: %{y:.1f}%<extra>%{x}</extra>",
        customdata=customdata,
    )
    drawn: list[float | None] = []
    for name, q, dash in (("median duration", 0.5, "solid"), ("p95 duration", 0.95, "dot")):
        y = [minutes(report.periods[p].percentile_ms(q)) for p in periods]
        drawn.extend(y)
        figure.add_scatter(
            name=f"{name} (min)",
            x=periods,
            y=y,
            yaxis="y2",
            mode="lines+markers",
            line={"color": "#3056d3", "dash": dash},
            hovertemplate=f"{name}: %{{y:.2f}} min<extra>%{{x}}</extra>",
            customdata=customdata,
        )
    figure.update_layout(
        yaxis={
            "title": {"text": "success rate"},
            "range": PERCENT_RANGE,
            "dtick": 20,
            "ticksuffix": "%",
        },
        yaxis2={**minutes_axis(drawn), "overlaying": "y", "side": "right"},
        xaxis=_period_axis(periods),
        # Room on the right for the minutes axis's labels and title (cut at the shared 20 px).
        **{**LAYOUT, "margin": {**MARGIN, "r": 70}},
    )
    return _json(figure)


def tokens_chart(tokens_by_model: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Input plus output tokens per period, stacked by model (a token axis in whole numbers,
    thousands and millions as k and M)."""
    periods = sorted({p for values in tokens_by_model.values() for p in values})
    figure = _Figure()
    for model, values in sorted(tokens_by_model.items()):
        figure.add_bar(
            name=_label(model),
            x=periods,
            y=[values.get(p, 0) for p in periods],
            hovertemplate="%{fullData.name}: %{y:,d} tokens<extra>%{x}</extra>",
        )
    figure.update_layout(
        barmode="stack",
        yaxis={"title": {"text": "tokens"}, "rangemode": "tozero", "tickformat": "~s"},
        xaxis=_period_axis(periods),
        **LAYOUT,
    )
    return _json(figure)


def error_trend_chart(
    days: Sequence[date],
    series: dict[str, Sequence[int]],
    links: dict[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Errors per day, stacked by error group (``series``: a label per group, a count per day);
    ``links`` (per group, one path per day) make each bar open that day's failed runs."""
    figure = _Figure()
    x = [str(day) for day in days]
    drawn: list[float | None] = []
    for name, counts in series.items():
        drawn.extend(counts)
        hrefs = links.get(name) if links else None
        figure.add_bar(
            name=_label(name),
            x=x,
            y=list(counts),
            hovertemplate="%{y:,d} errors<extra>%{x}</extra>",
            customdata=list(hrefs) if hrefs and any(hrefs) else None,
        )
    figure.update_layout(
        barmode="stack",
        yaxis=axis_for({**COUNT_AXIS, "title": {"text": "errors"}}, drawn),
        xaxis=_period_axis(x),
        **{**LAYOUT, "height": 260, "legend": {"orientation": "h", "y": -0.3}},
    )
    return _json(figure)


def sparkline_points(values: Sequence[int], *, width: int = 120, height: int = 24) -> str:
    """The ``points`` of an SVG polyline drawing ``values`` left to right in a ``width`` x
    ``height`` box (drawn by the page itself, no script: one per table row)."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{n * step:.1f},{height - 1 - (value / top) * (height - 2):.1f}"
        for n, value in enumerate(values)
    )


def step_rates_chart(
    rows: Sequence[tuple[str, Decimal | None, Decimal | None]], links: Sequence[str] | None = None
) -> dict[str, Any]:
    """Rework rate and first-pass failure (100% - first-pass success) per step, as percentages:
    ``rows`` are (label, rework rate, first-pass success rate) with rates as fractions; ``links``
    (one per row) make each bar open the step's runs."""
    labels = [_label(label) for label, _, _ in rows]

    def percents(values: list[Decimal | None]) -> list[float | None]:
        return [None if v is None else _plotted(v * 100) for v in values]

    figure = _Figure()
    hover = "%{fullData.name}: %{y:.1f}%<extra>%{x}</extra>"
    customdata = list(links) if links else None
    figure.add_bar(
        name="Rework rate",
        x=labels,
        y=percents([r for _, r, _ in rows]),
        hovertemplate=hover,
        customdata=customdata,
    )
    figure.add_bar(
        name="Failed first time",
        x=labels,
        y=percents([None if p is None else 1 - p for _, _, p in rows]),
        hovertemplate=hover,
        customdata=customdata,
    )
    figure.update_layout(
        **LAYOUT,
        barmode="group",
        yaxis={
            "title": {"text": "% of runs of the step"},
            "rangemode": "tozero",
            "ticksuffix": "%",
        },
    )
    return _json(figure)


def _lone_points(values: Sequence[float | None]) -> list[bool]:
    """Whether each value stands alone (no value in the bucket before or after it): a line
    without markers shows nothing for it, while it still sets the axis's range (a review found
    a chart whose axis reached 1.5e17 with every visible line flat at 0)."""
    last = len(values) - 1
    return [
        v is not None and (i == 0 or values[i - 1] is None) and (i == last or values[i + 1] is None)
        for i, v in enumerate(values)
    ]


def time_lines(
    x: Sequence[str],
    lines: dict[str, Sequence[float | None]],
    *,
    y_title: str,
    stacked: bool = False,
    percent: bool = False,
    colours: dict[str, str] | None = None,
    yaxis_format: str = "",
) -> dict[str, Any]:
    """Values over time, one line (or, ``stacked``, one bar series) per name; gaps where a bucket
    has no value; ``yaxis_format`` a d3 format for the axis and hover (``~s``: 1.8G for bytes).
    ``x`` are the buckets' local times as text (the page's time zone). Built as plain JSON
    (plotly's figure objects validate every value: ten times slower for long series)."""
    colours = colours or {}
    data: list[dict[str, Any]] = []
    for name, values in lines.items():
        trace: dict[str, Any] = {
            "type": "bar" if stacked else "scatter",
            "name": _label(name),
            "x": list(x),
            "y": [None if v is None else round(v, 4) for v in values],
        }
        if stacked:
            if name in colours:
                trace["marker"] = {"color": colours[name]}
        else:
            trace.update(mode="lines", connectgaps=False)
            if name in colours:
                trace["line"] = {"color": colours[name]}
            lone = _lone_points(trace["y"])
            if any(lone):  # a line draws nothing for a value without a neighbour: mark those
                trace["mode"] = "lines+markers"
                trace["marker"] = {"size": [6 if alone else 0 for alone in lone]}
                if name in colours:
                    trace["marker"]["color"] = colours[name]
        data.append(trace)
    yaxis: dict[str, Any] = {"title": {"text": y_title}, "rangemode": "tozero"}
    if percent:
        yaxis.update(ticksuffix="%", range=PERCENT_RANGE, dtick=20)
    if yaxis_format:
        yaxis.update(tickformat=yaxis_format, hoverformat=yaxis_format)
    layout = {
        **LAYOUT,
        "barmode": "stack",
        "xaxis": {"type": "date"},
        "yaxis": yaxis,
        "showlegend": True,
    }
    return {"data": data, "layout": layout}


def cost_change_chart(
    before: tuple[str, Decimal], parts: Sequence[tuple[str, Decimal]], after: tuple[str, Decimal]
) -> dict[str, Any]:
    """A waterfall from cost ``before`` through each part of the change to cost ``after``
    (``(label, USD)`` pairs; the parts add up to after - before)."""
    labels = [before[0], *(label for label, _ in parts), after[0]]
    values = [before[1], *(amount for _, amount in parts), after[1]]
    figure = _Figure()
    figure.data.append(
        _trace(
            "waterfall",
            {
                "x": [_label(text) for text in labels],
                "y": [_plotted(v) for v in values],
                "measure": ["absolute", *("relative" for _ in parts), "total"],
                "increasing": {"marker": {"color": "#c62828"}},
                "decreasing": {"marker": {"color": "#1a7f37"}},
                "totals": {"marker": {"color": "#0969da"}},
                "hovertemplate": "%{x}: $%{y:,.2f}<extra></extra>",
                "name": "AI cost",
            },
        )
    )
    figure.update_layout(**LAYOUT, showlegend=False, yaxis=MONEY_AXIS)
    return _json(figure)


def burndown_chart(
    actual: Sequence[tuple[date, Decimal]],
    expected: Sequence[tuple[date, Decimal]] = (),
    low: Sequence[tuple[date, Decimal]] = (),
    high: Sequence[tuple[date, Decimal]] = (),
) -> dict[str, Any]:
    """A prepaid amount's burn-down: what remains after each day so far (``actual``), and after
    each coming day by the forecast (``expected``), with its 80% band (``low``: remaining on the
    high-spend path; ``high``: on the low-spend path)."""
    figure = _Figure()
    drawn: list[float | None] = []
    y = [_plotted(v) for _, v in actual]
    drawn.extend(y)
    figure.add_scatter(
        x=[str(d) for d, _ in actual],
        y=y,
        mode="lines",
        line={"color": "#1a7f37"},
        name="remaining",
        hovertemplate=MONEY_HOVER,
    )
    if expected:
        figure.add_scatter(
            x=[str(d) for d, _ in high],
            y=[_plotted(v) for _, v in high],
            mode="lines",
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
        )
        figure.add_scatter(
            x=[str(d) for d, _ in low],
            y=[_plotted(v) for _, v in low],
            mode="lines",
            fill="tonexty",
            fillcolor="rgba(48,86,211,0.15)",
            line={"width": 0},
            name="forecast 80% interval",
        )
        figure.add_scatter(
            x=[str(d) for d, _ in expected],
            y=[_plotted(v) for _, v in expected],
            mode="lines",
            line={"color": "#3056d3", "dash": "dash"},
            name="forecast",
            hovertemplate=MONEY_HOVER,
        )
        drawn.extend(_plotted(v) for _, v in high)
    figure.update_layout(yaxis=axis_for(MONEY_AXIS, drawn), **LAYOUT)
    return _json(figure)


def cache_hit_chart(series: dict[str, dict[str, Decimal]]) -> dict[str, Any]:
    """Prompt-cache hit rate (cached share of input tokens, 0..1) per day, a line per model
    (``series``: model -> ISO day -> rate); the axis in percent from 0 to 100."""
    figure = _Figure()
    for name, values in sorted(series.items()):
        days = sorted(values)
        figure.add_scatter(
            name=_label(name),
            x=days,
            y=[float(values[day] * 100) for day in days],
            mode="lines+markers",
            hovertemplate="%{fullData.name}: %{y:.1f}%<extra>%{x}</extra>",
        )
    figure.update_layout(
        yaxis={
            "title": {"text": "cache hits"},
            "ticksuffix": "%",
            "range": PERCENT_RANGE,
            "dtick": 20,
        },
        xaxis={"type": "date"},
        **LAYOUT,
    )
    return _json(figure)
