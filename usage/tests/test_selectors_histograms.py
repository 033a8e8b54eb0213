"""Histograms summed in SQL equal the same rows' histograms added up in Python
(``durations.histogram_merge``), grouped or not, short (older) histograms included."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from django_tenants.utils import schema_context

from usage.domain.durations import BUCKETS, histogram_merge, percentile_ms
from usage.models import Project, RunDaily, RunStatus
from usage.selectors.histograms import histogram_sum, histogram_sums_by

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 2)


def _rows(rng: random.Random) -> list[RunDaily]:
    project = Project.objects.create(slug="hist", name="hist")
    rows = []
    for n in range(4):
        for template in ("", "python-library", "react-spa"):
            for status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.RUNNING):
                width = BUCKETS if rng.random() < 0.8 else rng.randint(0, BUCKETS - 1)
                histogram = [rng.choice((0, 0, 1, 7, 250)) for _ in range(width)]
                rows.append(
                    RunDaily.objects.create(
                        day=DAY + timedelta(days=n),
                        project=project,
                        run_type="build",
                        template=template,
                        status=status,
                        runs=sum(histogram),
                        duration_histogram=histogram,
                    )
                )
    return rows


def test_sums_equal_python_merge(alpha, monkeypatch):
    from zoneinfo import ZoneInfo

    from usage.selectors import reporting

    monkeypatch.setattr(reporting, "EXACT_RUNS", 0)  # the rollup's histograms, not the runs
    utc = ZoneInfo("UTC")
    with schema_context(alpha.schema):
        rows = _rows(random.Random(5))  # noqa: S311 - test data, not secrets
        everything = RunDaily.objects.filter(project__slug="hist")
        assert histogram_sum(everything, "duration_histogram") == histogram_merge(
            [r.duration_histogram for r in rows]
        )
        by_template = histogram_sums_by(everything, "duration_histogram", "template")
        assert by_template == {
            (t,): histogram_merge([r.duration_histogram for r in rows if r.template == t])
            for t in ("", "python-library", "react-spa")
        }
        assert histogram_sum(everything.none(), "duration_histogram") == [0] * BUCKETS

        finished = [r for r in rows if r.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)]
        merged = histogram_merge([r.duration_histogram for r in finished])
        assert reporting.range_durations(DAY, DAY + timedelta(days=3), utc) == {
            "p50": percentile_ms(merged, 0.5),
            "p95": percentile_ms(merged, 0.95),
            "p99": percentile_ms(merged, 0.99),
        }
        assert reporting.range_durations(DAY, DAY, utc)["p50"] == percentile_ms(
            histogram_merge([r.duration_histogram for r in finished if r.day == DAY]), 0.5
        )
