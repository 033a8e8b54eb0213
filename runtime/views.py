"""The runtime pages: a tenant's Status (queue status and health indicators), Factory Health and
Queues & Workers on its site, and the last two over the platform's series on the operator host.
Thin: parse the range, call the selectors, draw with ``factory_portal.charts``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from factory_portal import charts, periods, ranges
from factory_portal.accounts.permissions import can, role_required
from factory_portal.tenants.connection import connection_zone
from runtime import dashboards, status
from runtime.domain.ranges import (
    DEFAULT_PRESET,
    HOUR_PRESETS,
    PRESETS,
    Window,
    days_window,
    step_text,
    window,
)
from runtime.selectors import Trend
from usage.selectors import outcomes

RUN_COLOURS = {"success %": "#1a7f37", "failure %": "#c62828"}


def _x(buckets: list[datetime], zone: ZoneInfo) -> list[str]:
    return [b.astimezone(zone).strftime("%Y-%m-%dT%H:%M") for b in buckets]


class _Charts:
    """Figures for a page's template: ``None`` (an empty state) when nothing was reported."""

    def __init__(self, w: Window, zone: ZoneInfo) -> None:
        self.x = _x(w.buckets, zone)

    def lines(
        self,
        lines: dict[str, list[float | None]],
        y_title: str,
        links: dict[str, list[str] | None] | None = None,
        **options: Any,
    ) -> dict[str, Any] | None:
        """A chart of ``lines``; ``links`` (per line, one path per bucket) make its points
        open them."""
        if not any(v is not None for line in lines.values() for v in line):
            return None
        figure = charts.time_lines(self.x, lines, y_title=y_title, **options)
        for name, trace in zip(lines, figure["data"], strict=True):
            charts.linked(trace, (links or {}).get(name))
        return figure

    def trend(self, trend: Trend, y_title: str, **options: Any) -> dict[str, Any] | None:
        return None if trend.empty else self.lines(trend.lines, y_title, **options)


def _range_context(request: HttpRequest, zone: ZoneInfo) -> tuple[Window, dict[str, Any]]:
    """The page's window: the last hour or 24 hours (this page's own presets, the default), or
    the shared range of days in the page's zone (presets, custom days) in capped buckets. An
    unknown range shows 24 hours and says so."""
    now = timezone.now()
    get = request.GET
    today = periods.local_date(now, zone)
    key = (get.get("range") or "").strip().lower()
    problems: list[str] = []
    shared = key in ranges.PRESET_LABELS or key == ranges.CUSTOM
    if not shared and not key and (get.get("from") or get.get("to")):
        shared = True  # an older from/to link: custom days
    if key and not shared and key not in HOUR_PRESETS:
        keys = ", ".join([*HOUR_PRESETS, *ranges.PRESET_LABELS, ranges.CUSTOM])
        problems.append(f"Unknown range {key[:20]!r} (use {keys}); showing 24 hours.")
    extra = [(k, PRESETS[k].label) for k in HOUR_PRESETS]
    if shared:
        chosen, found = ranges.range_parse(get, today=today, max_days=ranges.MAX_DAYS)
        problems.extend(found)
        w = days_window(*chosen.bounds(zone), now)
        control = ranges.control(get, chosen, problems, extra=extra)
        days: ranges.DayRange | None = chosen
        range_text = chosen.label
    else:
        preset = PRESETS[key if key in HOUR_PRESETS else DEFAULT_PRESET]
        w = window(preset, now)
        label = f"Last {preset.label}"
        control = ranges.control(
            get,
            ranges.preset_range("today", today),
            problems,
            extra=extra,
            current=preset.key,
            label=label,
        )
        days = None
        range_text = f"the last {preset.label}"
    return w, {
        "now": now,
        "time_range": control,
        "range_text": range_text,
        "step_text": step_text(w.step),
        "days": days,
        "zone": zone.key,
        "window": w,
    }


def _day_links(request: HttpRequest, w: Window, zone: ZoneInfo, **filters: str) -> list[str] | None:
    """Per bucket, run history for the bucket's day in ``zone`` (its finest filter is a day)
    with ``filters``; None for a user who may not open run history."""
    if not can(request.user, "runs"):
        return None
    hrefs = []
    for start in w.buckets:
        day = start.astimezone(zone).date()
        hrefs.append(ranges.runs_href(ranges.DayRange(day, day), **filters))
    return hrefs


def _factory_health(request: HttpRequest, *, tenant: bool) -> HttpResponse:
    zone = connection_zone() if tenant else ZoneInfo("UTC")
    w, context = _range_context(request, zone)
    figures = dashboards.factory_health(w=w, now=context["now"], tenant=tenant)
    draw = _Charts(w, zone)
    runs = figures.runs
    context.update(
        tenant=tenant,
        runs=runs,
        pools=figures.pools,
        rates_chart=draw.lines(
            runs.rates,
            "% of finished runs",
            percent=True,
            colours=RUN_COLOURS,
            links={"failure %": _day_links(request, w, zone, status="Failed")} if tenant else None,
        ),
        failure_types_chart=draw.lines(
            runs.failure_types,
            "% of finished runs",
            stacked=True,
            links={
                kind: _day_links(
                    request,
                    w,
                    zone,
                    status="Failed",
                    failure_type="" if kind == "unspecified" else kind,
                )
                for kind in runs.failure_types
            }
            if tenant
            else None,
        ),
        duration_chart=draw.lines(runs.duration, "minutes"),
        job_duration_chart=draw.trend(figures.job_duration, "seconds"),
        jobs_in_queue_chart=draw.trend(figures.jobs_in_queue, "jobs waiting"),
        jobs_processing_chart=draw.trend(figures.jobs_processing, "jobs processing"),
        processing_rate_chart=draw.trend(figures.processing_rate, "jobs / s"),
    )
    return render(request, "runtime/factory_health.html", context)


def _queues(request: HttpRequest, *, tenant: bool) -> HttpResponse:
    zone = connection_zone() if tenant else ZoneInfo("UTC")
    w, context = _range_context(request, zone)
    figures = dashboards.queues_workers(w=w)
    draw = _Charts(w, zone)
    context.update(
        tenant=tenant,
        queues=status.queue_metrics(now=context["now"]),
        depth_chart=draw.trend(figures.depth, "jobs in queue"),
        jobs_processing_chart=draw.trend(figures.jobs_processing, "jobs processing"),
        cpu_chart=draw.trend(figures.cpu, "CPU per worker (cores)"),
        memory_chart=draw.trend(figures.memory, "memory per worker (bytes)", yaxis_format="~s"),
        processing_rate_chart=draw.trend(figures.processing_rate, "jobs / s"),
        errors_chart=draw.trend(figures.errors, "errors / min"),
        retries_chart=draw.trend(figures.retries, "retries / min"),
        dlq_chart=draw.trend(figures.dlq, "dead letters"),
    )
    return render(request, "runtime/queues.html", context)


@role_required("runs")
def status_page(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    queues = status.queue_metrics(now=now)
    return render(
        request,
        "runtime/status.html",
        {
            "now": now,
            "zone": connection_zone().key,
            "run_queue": outcomes.run_queue(),
            "queues": queues,
            "jobs_in_queue": status.jobs_in_queue(now=now),
            "health": status.health(now=now, queues=queues),
            "thresholds": status.thresholds(),
        },
    )


@role_required("runs")
def factory_health(request: HttpRequest) -> HttpResponse:
    return _factory_health(request, tenant=True)


@role_required("runs")
def queues(request: HttpRequest) -> HttpResponse:
    return _queues(request, tenant=True)


@role_required("operator")
def operator_factory_health(request: HttpRequest) -> HttpResponse:
    return _factory_health(request, tenant=False)


@role_required("operator")
def operator_queues(request: HttpRequest) -> HttpResponse:
    return _queues(request, tenant=False)
