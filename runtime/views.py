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

from factory_portal import charts
from factory_portal.accounts.permissions import role_required
from factory_portal.tenants.connection import connection_zone
from runtime import dashboards, status
from runtime.domain.ranges import PRESETS, Window
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
        **options: Any,
    ) -> dict[str, Any] | None:
        if not any(v is not None for line in lines.values() for v in line):
            return None
        return charts.time_lines(self.x, lines, y_title=y_title, **options)

    def trend(self, trend: Trend, y_title: str, **options: Any) -> dict[str, Any] | None:
        return None if trend.empty else self.lines(trend.lines, y_title, **options)


def _range_context(request: HttpRequest, zone: ZoneInfo) -> tuple[Window, dict[str, Any]]:
    now = timezone.now()
    preset, problem = dashboards.preset_parse(request.GET.get("range", ""))
    w = dashboards.window_for(preset, now)
    return w, {
        "now": now,
        "preset": preset,
        "presets": PRESETS.values(),
        "errors": [problem] if problem else [],
        "zone": zone.key,
        "window": w,
    }


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
        rates_chart=draw.lines(runs.rates, "% of finished runs", percent=True, colours=RUN_COLOURS),
        failure_types_chart=draw.lines(runs.failure_types, "% of finished runs", stacked=True),
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
        cpu_chart=draw.trend(figures.cpu, "CPU per worker"),
        memory_chart=draw.trend(figures.memory, "memory per worker"),
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
