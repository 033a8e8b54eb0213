"""Plotly figures for the pages, as plain JSON for ``Plotly.newPlot`` (plotly.js is served from
the installed package's static files, so charts render offline)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go

LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 10, "b": 40},
    "height": 320,
    "legend": {"orientation": "h", "y": -0.2},
    "plot_bgcolor": "#fff",
    "paper_bgcolor": "#fff",
}
STATUS_COLOURS = {
    "Succeeded": "#1a7f37",
    "Failed": "#c62828",
    "Cancelled": "#8c959f",
    "Running": "#0969da",
    "Requested": "#9a6700",
}


def _json(figure: go.Figure) -> dict[str, Any]:
    return json.loads(figure.to_json())


def _plotted(value: Decimal | str) -> float:
    """A number to draw (charts only; amounts shown as text stay Decimal)."""
    return float(value)


def daily_cost_chart(
    by_project: dict[str, dict[date, Decimal]],
    days: list[date],
    forecast: list[list[str]] | None = None,
) -> dict[str, Any]:
    """Daily AI cost stacked by project, with the forecast and its 80% band after today."""
    figure = go.Figure()
    for project, values in sorted(by_project.items()):
        figure.add_bar(
            name=project,
            x=[str(d) for d in days],
            y=[_plotted(values.get(d, Decimal(0))) for d in days],
        )
    if forecast:
        x = [row[0] for row in forecast]
        figure.add_scatter(
            x=x,
            y=[_plotted(row[3]) for row in forecast],
            mode="lines",
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
        )
        figure.add_scatter(
            x=x,
            y=[_plotted(row[2]) for row in forecast],
            mode="lines",
            fill="tonexty",
            fillcolor="rgba(48,86,211,0.15)",
            line={"width": 0},
            name="forecast 80% interval",
        )
        figure.add_scatter(
            x=x,
            y=[_plotted(row[1]) for row in forecast],
            mode="lines",
            line={"color": "#3056d3", "dash": "dash"},
            name="forecast",
        )
    figure.update_layout(barmode="stack", yaxis={"title": "USD", "tickprefix": "$"}, **LAYOUT)
    return _json(figure)


def job_timeline(jobs: list[Any], now: datetime) -> dict[str, Any]:
    """Gantt-style bars: one per job attempt, coloured by status, retries visible."""
    figure = go.Figure()
    for status, colour in STATUS_COLOURS.items():
        selected = [j for j in jobs if j.status == status and j.started_at is not None]
        if not selected:
            continue
        figure.add_bar(
            name=status,
            orientation="h",
            marker_color=colour,
            y=[f"{j.step_name or j.job_id} #{j.attempt}" for j in selected],
            base=[j.started_at.isoformat() for j in selected],
            x=[
                ((j.finished_at or now) - j.started_at) / timedelta(milliseconds=1)
                for j in selected
            ],
            hovertext=[j.failure_type for j in selected],
        )
    order = [
        f"{j.step_name or j.job_id} #{j.attempt}"
        for j in sorted(jobs, key=lambda j: (j.started_at is None, j.started_at))
    ]
    figure.update_layout(
        xaxis={"type": "date"},
        yaxis={"autorange": "reversed", "categoryorder": "array", "categoryarray": order},
        barmode="overlay",
        **{**LAYOUT, "height": 60 + 28 * max(len(jobs), 1)},
    )
    return _json(figure)


def trend_chart(series: dict[str, dict[str, Decimal]]) -> dict[str, Any]:
    """Cost per period, stacked by the chosen dimension."""
    periods = sorted({p for values in series.values() for p in values})
    figure = go.Figure()
    for name, values in sorted(series.items()):
        figure.add_bar(
            name=name, x=periods, y=[_plotted(values.get(p, Decimal(0))) for p in periods]
        )
    figure.update_layout(barmode="stack", yaxis={"title": "USD", "tickprefix": "$"}, **LAYOUT)
    return _json(figure)


def distribution_chart(run_totals: list[Decimal]) -> dict[str, Any]:
    """How much runs cost: a histogram of cost per run."""
    figure = go.Figure()
    figure.add_histogram(
        x=[_plotted(v) for v in run_totals], nbinsx=40, name="runs", marker_color="#3056d3"
    )
    figure.update_layout(
        xaxis={"title": "cost per run (USD)", "tickprefix": "$"}, yaxis={"title": "runs"}, **LAYOUT
    )
    return _json(figure)
