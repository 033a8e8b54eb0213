"""Reads of comparable finished runs, for quotes before a run (``billing.selectors.quotes``).

A run is comparable once it *finished*: Succeeded, Failed or Cancelled. Failed and cancelled
runs count because they cost money too: a quote that left them out would promise less than the
template has been costing. Runs still active are not in (their cost is not known yet).

Bounded for any tenant: at most ``SAMPLE_CAP`` runs (the latest finished), one query; runs are
found by the partial index on ``finished_at`` and their costs by the ledger's and allocation's
``(run, ...)`` unique indexes. The step figures read the daily step rollup, less the jobs and
calls of the template's runs still active (read through the run index: a few runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Sum

from factory_portal.db_routing import read_connection
from factory_portal.periods import local_bounds
from factory_portal.tenants.connection import connection_zone
from usage.models import (
    ACTIVE_RUN_STATUSES,
    FINISHED_RUN_STATUSES,
    LlmCostCorrection,
    RunDaily,
)

SAMPLE_CAP = 5000
ZERO = Decimal(0)


@dataclass(frozen=True)
class FinishedRun:
    run_pk: int
    project: str
    template: str
    run_type: str
    status: str
    requested_on: date  # the tenant's local day
    finished_on: date
    ai_cost: Decimal  # USD, 10 places: the run's ledger (re-pricing corrections included)
    allocated: Decimal  # USD, 2 places: infrastructure allocated to it (allocated months only)
    duration_ms: int | None

    @property
    def total_cost(self) -> Decimal:
        return self.ai_cost + self.allocated


_FINISHED_SQL = """
SELECT r.id, p.slug, r.template_recipe_id, r.run_type, r.status,
       (r.requested_at AT TIME ZONE %(zone)s)::date, (r.finished_at AT TIME ZONE %(zone)s)::date,
       COALESCE((SELECT sum(l.cost) FROM usage_runledger l WHERE l.run_id = r.id), 0),
       COALESCE((SELECT sum(a.amount) FROM usage_runallocatedcost a WHERE a.run_id = r.id), 0),
       r.duration_ms
FROM usage_run r
JOIN usage_project p ON p.id = r.project_id
WHERE r.finished_at IS NOT NULL AND r.finished_at >= %(lo)s AND r.finished_at < %(hi)s
  AND r.status = ANY(%(statuses)s) {template}
ORDER BY r.finished_at DESC, r.id DESC
LIMIT %(cap)s
"""


def finished_runs(
    *, start: date, end: date, template: str | None = None, cap: int = SAMPLE_CAP
) -> list[FinishedRun]:
    """Runs (of ``template``, or of every template when None) that finished on the tenant's
    local days ``start`` to ``end`` inclusive, newest first (finish time, then id: a stable
    order), at most ``cap``."""
    zone = connection_zone()
    lo, hi = local_bounds(start, date.fromordinal(end.toordinal() + 1), zone)
    sql = _FINISHED_SQL.format(
        template="AND r.template_recipe_id = %(template)s" if template is not None else ""
    )
    params = {
        "zone": str(zone),
        "lo": lo,
        "hi": hi,
        "statuses": [str(s) for s in FINISHED_RUN_STATUSES],
        "template": template,
        "cap": cap,
    }
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        FinishedRun(
            run_pk=pk,
            project=project,
            template=template_,
            run_type=run_type,
            status=status,
            requested_on=requested_on,
            finished_on=finished_on,
            ai_cost=Decimal(ai),
            allocated=Decimal(allocated),
            duration_ms=duration,
        )
        for (
            pk,
            project,
            template_,
            run_type,
            status,
            requested_on,
            finished_on,
            ai,
            allocated,
            duration,
        ) in rows
    ]


@dataclass(frozen=True)
class StepCost:
    step_name: str
    runs: int  # (run, step) pairs
    cost: Decimal  # USD, 10 places: AI cost of the calls made in the step's jobs


# Each step of the template in the daily step rollup, less the (run, step) pairs and step costs
# of the template's runs still active (requested or running) and requested in the window,
# counted as the rollup counts them: a pair per step name the run has jobs of, a call's cost
# (re-pricing corrections included) under the step of its job id's latest attempt. One
# statement (one snapshot: a run finishing meanwhile is counted once); the active runs' calls
# are read per run through the run index (LATERAL), like the rollup's own reads.
_STEPS_SQL = """
WITH rollup AS (
    SELECT s.step_name, sum(s.runs) AS runs, sum(s.cost) AS cost
    FROM usage_stepdaily s
    WHERE s.template = %(template)s AND s.day >= %(start)s AND s.day <= %(end)s
    GROUP BY s.step_name
),
active AS (
    SELECT r.id FROM usage_run r
    WHERE r.status = ANY(%(active)s) AND r.template_recipe_id = %(template)s
      AND r.requested_at >= %(lo)s AND r.requested_at < %(hi)s
),
pairs AS (
    SELECT j.step_name, count(DISTINCT j.run_id) AS runs
    FROM active a JOIN usage_job j ON j.run_id = a.id
    GROUP BY j.step_name
),
costs AS (
    SELECT x.step_name, sum(x.cost) AS cost
    FROM active a
    CROSS JOIN LATERAL (
        SELECT j.step_name,
               coalesce(e.cost, 0) + coalesce((SELECT sum(c.delta) FROM usage_llmcostcorrection c
                                               WHERE c.event_id = e.event_id), 0) AS cost
        FROM usage_llmusageevent e
        JOIN LATERAL (
            SELECT j.step_name FROM usage_job j
            WHERE j.run_id = a.id AND j.job_id = e.job_ref
            ORDER BY j.attempt DESC LIMIT 1
        ) j ON true
        WHERE e.run_id = a.id AND e.job_ref <> ''
    ) x
    GROUP BY x.step_name
)
SELECT r.step_name, r.runs - coalesce(p.runs, 0), r.cost - coalesce(c.cost, 0)
FROM rollup r
LEFT JOIN pairs p ON p.step_name = r.step_name
LEFT JOIN costs c ON c.step_name = r.step_name
ORDER BY r.step_name
"""


def step_costs(
    *, template: str, start: date, end: date, zone: ZoneInfo | None = None
) -> list[StepCost]:
    """Each step of ``template`` in the runs requested on the local days ``start`` to ``end``
    inclusive that have *finished*, by step name: (run, step) pairs and their AI cost.

    The daily step rollup counts every run, active ones included (their calls so far); the
    template's active runs requested in the window are read and taken out exactly (a few runs:
    those running now). Steps left with no pair are not listed."""
    zone = zone or connection_zone()
    lo, hi = local_bounds(start, date.fromordinal(end.toordinal() + 1), zone)
    params = {
        "template": template,
        "start": start,
        "end": end,
        "active": [str(s) for s in ACTIVE_RUN_STATUSES],
        "lo": lo,
        "hi": hi,
    }
    with read_connection().cursor() as cursor:
        cursor.execute(_STEPS_SQL, params)
        rows = cursor.fetchall()
    return [StepCost(step, int(runs), Decimal(cost)) for step, runs, cost in rows if runs > 0]


def finished_runs_requested(*, template: str, start: date, end: date) -> int:
    """Runs of ``template`` requested on the local days ``start`` to ``end`` inclusive that have
    finished (the daily run rollup): what a step's share of runs is measured against."""
    row = RunDaily.objects.filter(
        template=template,
        day__gte=start,
        day__lte=end,
        status__in=[str(s) for s in FINISHED_RUN_STATUSES],
    ).aggregate(runs=Sum("runs"))
    return row["runs"] or 0


def history_templates(*, start: date, end: date) -> list[tuple[str, str, int]]:
    """(template, run type, finished runs) requested on the local days ``start`` to ``end``
    inclusive, from the daily run rollup: what a quotes page lists."""
    rows = (
        RunDaily.objects.filter(
            day__gte=start, day__lte=end, status__in=[str(s) for s in FINISHED_RUN_STATUSES]
        )
        .values_list("template", "run_type")
        .annotate(runs=Sum("runs"))
        .order_by("template", "run_type")
    )
    return [(template, run_type, runs or 0) for template, run_type, runs in rows]


def history_fingerprint(*, template: str, start: date, end: date) -> tuple[object, ...]:
    """Cheap aggregates that change when a run of ``template`` finishes on the local days
    ``start`` to ``end`` (from the daily run rollup's finished rows, by request day from 7 days
    earlier: a run finishing in the window may have been requested before it) or any call is
    re-priced. Calls of active runs do not change it: they are in no finished run's cost."""
    early = date.fromordinal(start.toordinal() - 7)
    runs = RunDaily.objects.filter(
        template=template,
        day__gte=early,
        day__lte=end,
        status__in=[str(s) for s in FINISHED_RUN_STATUSES],
    ).aggregate(rows=Count("id"), finished=Sum("runs"), ms=Sum("duration_ms_total"))
    corrections = LlmCostCorrection.objects.aggregate(last=Max("id"))
    return (*runs.values(), corrections["last"])
