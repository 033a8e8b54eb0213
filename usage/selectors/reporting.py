"""Usage reports: run volume, run types, templates, success rate and execution time trends, and
tokens by model, per day, week or month. Everything is read from the daily rollups (``RunDaily``,
``LlmUsageDaily``), so a report costs a handful of grouped queries whatever the tenant's size.

Periods are the tenant's days (its time zone) grouped into ``day``, ``week`` (starting Monday)
or ``month`` keys.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.db.models import Count, Q, Sum, TextField
from django.db.models.functions import Cast

from factory_portal.money import percent
from factory_portal.periods import period_key
from usage.domain.durations import BUCKETS, percentile_ms
from usage.models import FINISHED_RUN_STATUSES, LlmUsageDaily, Run, RunDaily, RunStatus

GRAINS = ("day", "week", "month")
RECENT_WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}


def success_rate(succeeded: int, finished: int) -> Decimal | None:
    """Succeeded runs as a percentage of finished ones, to one decimal (half-even); None when
    none finished."""
    return percent(succeeded, finished, 1) if finished else None


def status_success_rate(counts: Mapping[str, int]) -> Decimal | None:
    """The success rate of runs counted by status (``{status: runs}``)."""
    return success_rate(
        counts.get(RunStatus.SUCCEEDED, 0), sum(counts.get(s, 0) for s in FINISHED_RUN_STATUSES)
    )


@dataclass
class PeriodRuns:
    """Runs requested in one period, by status, with their merged duration histogram."""

    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    histogram: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def finished(self) -> int:
        return sum(self.by_status[s] for s in FINISHED_RUN_STATUSES)

    @property
    def success_rate(self) -> Decimal | None:
        return success_rate(self.by_status[RunStatus.SUCCEEDED], self.finished)

    def percentile_ms(self, q: float) -> int | None:
        return percentile_ms(self.histogram, q) if self.histogram else None


@dataclass(frozen=True)
class TemplateUsage:
    template: str
    runs: int
    succeeded: int
    finished: int
    p50_ms: int | None

    @property
    def success_rate(self) -> Decimal | None:
        return success_rate(self.succeeded, self.finished)


@dataclass(frozen=True)
class UsageReport:
    start: date
    end: date
    grain: str
    periods: dict[str, PeriodRuns]
    run_types: dict[str, int]
    templates: list[TemplateUsage]
    tokens_by_model: dict[str, dict[str, int]]  # model -> period -> input + output tokens
    model_totals: list[tuple[str, int, int, int]]  # model, calls, input, output

    @property
    def total_runs(self) -> int:
        return sum(p.total for p in self.periods.values())


def usage_report(*, start: date, end: date, grain: str, top_templates: int = 10) -> UsageReport:
    """The usage report for the tenant's days ``start <= day <= end``."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}")
    periods: dict[str, PeriodRuns] = {}
    run_types: dict[str, int] = defaultdict(int)
    templates: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    rows = (
        RunDaily.objects.filter(day__gte=start, day__lte=end)
        .values_list("day", "run_type", "template", "status")
        .annotate(n=Sum("runs"))
    )
    for day, run_type, template, status, runs in rows:
        period = periods.setdefault(period_key(day, grain), PeriodRuns())
        period.by_status[status] += runs
        run_types[run_type or "(none)"] += runs
        counts = templates[template or "(none)"]
        counts[0] += runs
        if status == RunStatus.SUCCEEDED:
            counts[1] += runs
        if status in FINISHED_RUN_STATUSES:
            counts[2] += runs
    period_histograms, template_histograms = _finished_histograms(start, end, grain)
    for key, histogram in period_histograms.items():
        periods[key].histogram = histogram
    top = sorted(templates.items(), key=lambda item: (-item[1][0], item[0]))[:top_templates]
    template_rows = [
        TemplateUsage(
            template=name,
            runs=runs,
            succeeded=succeeded,
            finished=finished,
            p50_ms=percentile_ms(template_histograms[name], 0.5)
            if name in template_histograms
            else None,
        )
        for name, (runs, succeeded, finished) in top
    ]
    tokens: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    token_rows = (
        LlmUsageDaily.objects.filter(day__gte=start, day__lte=end)
        .values_list("day", "model")
        .annotate(
            calls=Sum("calls"), input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens")
        )
    )
    for day, model, calls, input_tokens, output_tokens in token_rows:
        tokens[model][period_key(day, grain)] += input_tokens + output_tokens
        total = totals[model]
        total[0] += calls
        total[1] += input_tokens
        total[2] += output_tokens
    model_totals = sorted(
        ((model, c, i, o) for model, (c, i, o) in totals.items()), key=lambda t: -(t[2] + t[3])
    )
    return UsageReport(
        start=start,
        end=end,
        grain=grain,
        periods=dict(sorted(periods.items())),
        run_types=dict(sorted(run_types.items(), key=lambda item: -item[1])),
        templates=template_rows,
        tokens_by_model={model: dict(values) for model, values in tokens.items()},
        model_totals=model_totals,
    )


def _finished_histograms(
    start: date, end: date, grain: str
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Duration histograms of finished runs merged per period and per template. The arrays come
    as text (parsing it is several times faster than decoding arrays value by value)."""
    per_period: dict[str, list[int]] = {}
    per_template: dict[str, list[int]] = {}
    rows = (
        RunDaily.objects.filter(
            day__gte=start,
            day__lte=end,
            status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED],
        )
        .exclude(duration_histogram=[])
        .annotate(histogram_text=Cast("duration_histogram", TextField()))
        .values_list("day", "template", "histogram_text")
    )
    days, names, texts = [], [], []
    for day, template, text in rows:
        days.append(period_key(day, grain))
        names.append(template or "(none)")
        texts.append(text[1:-1])
    if not texts:
        return per_period, per_template
    # One parse for every array; histograms shorter than BUCKETS (older rows) are padded.
    widths = {text.count(",") + 1 for text in texts}
    if widths == {BUCKETS}:
        matrix = np.array(",".join(texts).split(","), dtype=np.int64).reshape(len(texts), BUCKETS)
    else:
        matrix = np.zeros((len(texts), BUCKETS), dtype=np.int64)
        for row, text in enumerate(texts):
            values = [int(v) for v in text.split(",")]
            matrix[row, : len(values)] = values
    for keys, merged in ((days, per_period), (names, per_template)):
        labels = sorted(set(keys))
        position = {label: n for n, label in enumerate(labels)}
        sums = np.zeros((len(labels), BUCKETS), dtype=np.int64)
        np.add.at(sums, [position[key] for key in keys], matrix)
        for label, row in zip(labels, sums, strict=True):
            merged[label] = [int(v) for v in row]
    return per_period, per_template


def recent_success_rates(*, now: datetime) -> dict[str, Decimal | None]:
    """Success rate of runs that finished in the last hour, 24 hours and 7 days (one query on the
    finished-at index)."""
    since = {name: now - window for name, window in RECENT_WINDOWS.items()}
    aggregates = {}
    for name, moment in since.items():
        window = Q(finished_at__gte=moment)
        aggregates[f"{name}_ok"] = Count("id", filter=window & Q(status=RunStatus.SUCCEEDED))
        aggregates[f"{name}_all"] = Count("id", filter=window)
    counts = Run.objects.filter(
        finished_at__gte=min(since.values()), finished_at__lte=now, status__in=FINISHED_RUN_STATUSES
    ).aggregate(**aggregates)
    return {name: success_rate(counts[f"{name}_ok"], counts[f"{name}_all"]) for name in since}
