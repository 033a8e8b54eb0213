"""Where a run stands while it runs, for billing's run guard: its AI cost so far (the ledger,
corrections included), which steps are done, in progress or not started, and what the calls of
each step cost so far. (The history the guard's expectations are drawn from is
``usage.selectors.run_history``, the quotes' own.)

A step is *done* when it has jobs and none of them is requested or running, *in progress* when
one is. The per-step spend is the cost of the run's calls as stored (the call's job gives its
step; re-pricing corrections are in the total only). Three grouped queries for any number of
runs; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import Coalesce

from usage.models import (
    ACTIVE_RUN_STATUSES,
    FINISHED_RUN_STATUSES,
    Job,
    LlmUsageEvent,
    Run,
)
from usage.selectors import run_token_cost

ZERO = Decimal(0)


@dataclass(frozen=True)
class StepProgress:
    step_name: str
    done: bool  # has jobs and none of them is requested or running
    spent: Decimal  # AI cost of the step's calls so far (USD, unrounded)


@dataclass(frozen=True)
class RunProgress:
    pk: int
    run_id: str
    project: str  # slug
    template: str
    run_type: str
    status: str
    finished: bool
    cost_so_far: Decimal  # the ledger's AI cost (USD, unrounded)
    steps: dict[str, StepProgress] = field(default_factory=dict)


def _progress(runs: list[Run]) -> list[RunProgress]:
    pks = [r.pk for r in runs]
    if not pks:
        return []
    running: dict[int, dict[str, bool]] = {}
    for run_pk, step, status in Job.objects.filter(run_id__in=pks).values_list(
        "run_id", "step_name", "status"
    ):
        steps = running.setdefault(run_pk, {})
        steps[step] = steps.get(step, False) or status in ACTIVE_RUN_STATUSES
    spent = {
        (row["run_id"], row["job__step_name"]): row["cost"]
        for row in LlmUsageEvent.objects.filter(run_id__in=pks, job__isnull=False)
        .values("run_id", "job__step_name")
        .annotate(cost=Coalesce(Sum("cost"), ZERO))
    }
    out = []
    for run in runs:
        steps = {
            step: StepProgress(step, not busy, spent.get((run.pk, step), ZERO))
            for step, busy in running.get(run.pk, {}).items()
        }
        out.append(
            RunProgress(
                pk=run.pk,
                run_id=run.run_id,
                project=run.project.slug,
                template=run.template_recipe_id,
                run_type=run.run_type,
                status=run.status,
                finished=run.status in FINISHED_RUN_STATUSES,
                cost_so_far=run.cost_so_far,
                steps=steps,
            )
        )
    return out


def _runs():  # type: ignore[no-untyped-def]
    return Run.objects.select_related("project").annotate(cost_so_far=run_token_cost())


def run_progress(run_id: str) -> RunProgress | None:
    """The run with this client id, or None (an id PostgreSQL text cannot hold is no run's)."""
    if "\x00" in run_id:
        return None
    return next(iter(_progress(list(_runs().filter(run_id=run_id)[:1]))), None)


def runs_progress(pks: Iterable[int]) -> list[RunProgress]:
    return _progress(list(_runs().filter(pk__in=list(pks))))


def run_scopes(pks: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Primary key -> (project slug, template) of these runs: which run budget applies, read
    before anything heavier."""
    rows = Run.objects.filter(pk__in=list(pks)).values_list(
        "pk", "project__slug", "template_recipe_id"
    )
    return {pk: (project, template) for pk, project, template in rows}


def active_run_pks(*, limit: int) -> list[int]:
    """Requested and running runs, oldest first, at most ``limit``."""
    return list(
        Run.objects.filter(status__in=ACTIVE_RUN_STATUSES)
        .order_by("requested_at")
        .values_list("pk", flat=True)[:limit]
    )


def finished_run_pks(*, since: datetime, limit: int) -> list[int]:
    """Runs that finished since ``since`` (the partial index on ``finished_at``), newest first,
    at most ``limit``."""
    return list(
        Run.objects.filter(finished_at__gte=since, status__in=FINISHED_RUN_STATUSES)
        .order_by("-finished_at")
        .values_list("pk", flat=True)[:limit]
    )


def run_pks(run_ids: Iterable[str]) -> dict[str, int]:
    """Client run id -> primary key, for the ids that exist."""
    return dict(Run.objects.filter(run_id__in=list(run_ids)).values_list("run_id", "pk"))
