"""Tenant pages over usage: run history (filters, keyset pages, CSV) and active runs; the
overview's usage figures. Thin: selectors do the work."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from factory_portal.periods import month_start
from factory_portal.spreadsheets import cell
from usage import selectors
from usage.models import RunStatus


@dataclass(frozen=True)
class Overview:
    period_start: datetime
    now: datetime
    tokens: selectors.TokenTotals
    status_counts: dict[str, int]
    runs_total: int
    success_rate: Decimal | None
    active_runs: list[selectors.ActiveRun]
    active_counts: dict[str, int]

    @property
    def active_total(self) -> int:
        return sum(self.active_counts.values())

    complete_until: datetime | None


def overview_build(*, now: datetime, tz_name: str) -> Overview:
    start = month_start(now, tz_name)
    counts = selectors.run_status_counts(start=start, end=now)
    finished = sum(counts[s] for s in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED))
    success_rate = (
        (Decimal(counts[RunStatus.SUCCEEDED]) * 100 / finished).quantize(Decimal("0.1"))
        if finished
        else None
    )
    return Overview(
        period_start=start,
        now=now,
        tokens=selectors.token_totals(start=start, end=now),
        status_counts=counts,
        runs_total=sum(counts.values()),
        success_rate=success_rate,
        active_runs=selectors.active_runs(limit=25),
        active_counts=selectors.active_run_counts(),
        complete_until=selectors.usage_complete_until(),
    )


ACTIVE_LIMIT = 100


def _filters(request: HttpRequest) -> selectors.RunFilters:
    get = request.GET

    def day(name: str) -> date | None:
        try:
            return date.fromisoformat(get.get(name, "")) if get.get(name) else None
        except ValueError:
            return None

    status = get.get("status", "")
    return selectors.RunFilters(
        status=status if status in RunStatus.values else "",
        project=get.get("project", "")[:100],
        template=get.get("template", "")[:200],
        run_type=get.get("run_type", "")[:64],
        start=day("from"),
        end=day("to"),
        search=get.get("q", "").strip()[:128],
    )


def _cursor(raw: str) -> tuple[datetime, int] | None:
    """``<ISO time>_<id>`` as produced by the page's "next" link; anything else starts over."""
    try:
        at, pk = raw.rsplit("_", 1)
        return datetime.fromisoformat(at), int(pk)
    except ValueError:
        return None


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    rows, next_cursor = selectors.runs_page(filters, after=_cursor(request.GET.get("after", "")))
    query = request.GET.copy()
    query.pop("after", None)
    next_query = None
    if next_cursor is not None:
        query["after"] = f"{next_cursor[0].isoformat()}_{next_cursor[1]}"
        next_query = query.urlencode()
        query.pop("after")
    return render(
        request,
        "usage/runs.html",
        {
            "rows": rows,
            "filters": filters,
            "choices": selectors.run_filter_choices(),
            "statuses": RunStatus.values,
            "next_query": next_query,
            "query": query.urlencode(),
        },
    )


@login_required
def run_list_csv(request: HttpRequest) -> StreamingHttpResponse:
    filters = _filters(request)

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(
            [
                "run_id",
                "project",
                "template",
                "run_type",
                "status",
                "requested_at",
                "duration_ms",
                "failure_type",
                "ai_cost_usd",
            ]
        )
        for row in selectors.runs_iter(filters):
            yield writer.writerow(
                [
                    cell(row.run_id),
                    cell(row.project),
                    cell(row.template),
                    cell(row.run_type),
                    row.status,
                    row.requested_at.isoformat(),
                    row.duration_ms,
                    cell(row.failure_type),
                    row.cost,
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="runs.csv"'
    return response


@login_required
def active_runs(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    context = {
        "runs": selectors.active_runs(limit=ACTIVE_LIMIT),
        "counts": selectors.active_run_counts(),
        "now": now,
    }
    if request.GET.get("fragment"):
        return render(request, "usage/active_rows.html", context)
    return render(request, "usage/active.html", context)
