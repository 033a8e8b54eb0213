"""``rollups_fingerprint``: the cache validity key of cost summaries, cost changes and savings.
It must change whenever a row of the four tables it reads changes inside the range, and only
then."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import F, QuerySet
from django_tenants.utils import schema_context

from usage import selectors
from usage.models import (
    InfraUsageDaily,
    LlmUsageDaily,
    Project,
    Run,
    RunDaily,
    RunLedger,
    RunStatus,
)

pytestmark = pytest.mark.django_db

START, END = date(2026, 10, 1), date(2026, 11, 1)
# The first and last day in the range, and the days just outside it on either side.
INSIDE = (START, END - timedelta(days=1))
OUTSIDE = (START - timedelta(days=1), END)


def _rows_on(day: date, project: Project, run: Run) -> None:
    LlmUsageDaily.objects.create(
        day=day,
        project=project,
        provider="anthropic",
        model="claude-sonnet-4-5",
        operation="chat",
        run_type="",
        template="",
        calls=3,
        cost=Decimal("0.25"),
    )
    RunDaily.objects.create(
        day=day,
        project=project,
        run_type="build",
        template="t",
        status=RunStatus.SUCCEEDED,
        runs=2,
        duration_ms_total=5000,
    )
    InfraUsageDaily.objects.create(
        day=day,
        project=project,
        resource_type="cpu",
        unit="vcpu_seconds",
        run_type="",
        template="",
        events=1,
        quantity=Decimal("12.5"),
    )
    RunLedger.objects.create(
        run=run, day=day, calls=3, cost=Decimal("0.25"), infra_events=1, job_ms=4000
    )


def _add_row(model: type[LlmUsageDaily | RunDaily | InfraUsageDaily]) -> Callable:
    """A change: one more row of ``model`` on the day, copied from the day's row, every figure
    the fingerprint sums set to zero (only the row count moves)."""

    def change(day: date) -> None:
        row = model.objects.get(day=day)
        row.pk = None
        if isinstance(row, LlmUsageDaily):
            row.model, row.calls, row.cost = "other-model", 0, Decimal(0)
        elif isinstance(row, RunDaily):
            row.status, row.runs, row.duration_ms_total = RunStatus.FAILED, 0, 0
        else:
            row.resource_type, row.quantity = "memory", Decimal(0)
        row.save()

    return change


def _add_ledger_stripe(day: date) -> None:
    row = RunLedger.objects.get(day=day)
    RunLedger.objects.create(run_id=row.run_id, day=day, stripe=1)


def _bump(model: type, **changes: object) -> Callable:
    def change(day: date) -> None:
        rows: QuerySet = model.objects.filter(day=day)
        assert rows.update(**{field: F(field) + value for field, value in changes.items()}) == 1

    return change


CHANGES = {
    "llm calls": _bump(LlmUsageDaily, calls=1),
    "llm cost": _bump(LlmUsageDaily, cost=Decimal("0.0000000001")),
    "llm row": _add_row(LlmUsageDaily),
    "runs": _bump(RunDaily, runs=1),
    "run duration": _bump(RunDaily, duration_ms_total=1),
    "run daily row": _add_row(RunDaily),
    "infra quantity": _bump(InfraUsageDaily, quantity=Decimal("0.000001")),
    "infra row": _add_row(InfraUsageDaily),
    "ledger cost": _bump(RunLedger, cost=Decimal("0.0000000001")),
    "ledger job time": _bump(RunLedger, job_ms=1),
    "ledger infra events": _bump(RunLedger, infra_events=1),
    "ledger row": _add_ledger_stripe,
}


@pytest.fixture
def filled(alpha):  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        project = Project.objects.create(slug="p", name="P")
        at = datetime(2026, 10, 2, tzinfo=UTC)
        run = Run.objects.create(
            run_id="r", project=project, status=RunStatus.SUCCEEDED, requested_at=at, updated_at=at
        )
        for day in (*INSIDE, *OUTSIDE):
            _rows_on(day, project, run)
        yield


def _fingerprint() -> tuple[object, ...]:
    return selectors.rollups_fingerprint(start=START, end=END)


@pytest.mark.parametrize("name", CHANGES)
@pytest.mark.parametrize("day", INSIDE)
def test_a_change_inside_the_range_changes_the_fingerprint(filled, name: str, day: date) -> None:  # type: ignore[no-untyped-def]
    before = _fingerprint()
    assert _fingerprint() == before  # nothing changed: equal
    CHANGES[name](day)
    assert _fingerprint() != before


@pytest.mark.parametrize("name", CHANGES)
@pytest.mark.parametrize("day", OUTSIDE)
def test_a_change_outside_the_range_leaves_it_equal(filled, name: str, day: date) -> None:  # type: ignore[no-untyped-def]
    before = _fingerprint()
    CHANGES[name](day)
    assert _fingerprint() == before


def test_it_counts_and_sums_each_table(filled) -> None:  # type: ignore[no-untyped-def]
    # Two days in range, each with one row per table.
    assert _fingerprint() == (
        2, 6, Decimal("0.5"),  # LLM daily: rows, calls, cost
        2, 4, 10000,  # run daily: rows, runs, duration
        2, Decimal(25),  # infrastructure daily: rows, quantity
        2, Decimal("0.5"), 8000, 2,  # run ledger: rows, cost, job time, infrastructure events
    )  # fmt: skip


def test_an_empty_range_has_no_sums(alpha) -> None:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        assert _fingerprint() == (0, None, None, 0, None, None, 0, None, 0, None, None, None)
