"""Run guard test data (current schema): a history of identical finished runs, so any sensible
quote gives the same P90 and step expectations, and an active run part-way through its steps.

History: ``HISTORY_RUNS`` runs of template ``TEMPLATE`` (project ``web``, type ``build``), each
with step ``plan`` costing $1 and step ``code`` costing $3: P90 AI cost $4, expected plan $1,
code $3. The active run (``live_run``) finished ``plan`` ($1) and is in ``code`` ($1 so far):
$2 so far, $2 expected remaining, $4 projected."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from factory_portal.tenants.models import Tenant
from tests.support import llm_event_in
from usage.domain.runs import JobUpdate, RunUpdate
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

TEMPLATE = "tpl-guard"
PROJECT = "web"
RUN_TYPE = "build"
HISTORY_RUNS = 12
STEP_COSTS = {"plan": Decimal(1), "code": Decimal(3)}


def _job(job_id: str, step: str, status: str, at: datetime) -> JobUpdate:
    done = status != "Running"
    return JobUpdate(
        job_id=job_id,
        attempt=1,
        status=status,
        timestamp=at + timedelta(minutes=2 if done else 1),
        step_name=step,
        started_at=at,
        finished_at=at + timedelta(minutes=2) if done else None,
    )


def run_with_jobs(
    run_id: str, status: str, at: datetime, jobs: tuple[JobUpdate, ...], **fields: object
) -> None:
    finished = status not in ("Requested", "Running")
    runs_ingest(
        updates=[
            RunUpdate(
                position=0,
                run_id=run_id,
                project=fields.pop("project", PROJECT),  # type: ignore[arg-type]
                status=status,
                timestamp=at + timedelta(minutes=10 if finished else 1),
                template_recipe_id=fields.pop("template", TEMPLATE),  # type: ignore[arg-type]
                run_type=RUN_TYPE,
                requested_at=at,
                started_at=at,
                finished_at=at + timedelta(minutes=10) if finished else None,
                jobs=jobs,
            )
        ]
    )


def spend(
    run_id: str,
    job_id: str,
    cost: Decimal | str,
    event_id: str,
    at: datetime,
    project: str = PROJECT,
) -> None:
    """One LLM call of ``cost`` (client-supplied) in the run's job, through the real ingest."""
    tenant = Tenant.objects.get(schema_name=connection.schema_name)
    events_ingest(
        events=[
            llm_event_in(
                event_id,
                at,
                project=project,
                run_id=run_id,
                job_id=job_id,
                provider="anthropic",
                model="claude-sonnet-4-5",
                cost=Decimal(cost),
            )
        ],
        pricer=pricer_for(tenant),
    )


def history_make(count: int = HISTORY_RUNS, *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    for i in range(count):
        at = now - timedelta(days=2, minutes=20 * i)
        run_id = f"hist-{i:03d}"
        jobs = tuple(
            _job(f"{run_id}-{step}", step, "Succeeded", at + timedelta(minutes=n * 3))
            for n, step in enumerate(STEP_COSTS)
        )
        run_with_jobs(run_id, "Succeeded", at, jobs)
        for step, cost in STEP_COSTS.items():
            spend(run_id, f"{run_id}-{step}", cost, f"{run_id}-{step}-e", at + timedelta(minutes=1))


def live_run(run_id: str = "live-1", *, now: datetime | None = None) -> None:
    """Active: ``plan`` done ($1), ``code`` running ($1 so far)."""
    at = (now or timezone.now()) - timedelta(minutes=30)
    jobs = (
        _job(f"{run_id}-plan", "plan", "Succeeded", at),
        _job(f"{run_id}-code", "code", "Running", at + timedelta(minutes=3)),
    )
    run_with_jobs(run_id, "Running", at, jobs)
    spend(run_id, f"{run_id}-plan", "1", f"{run_id}-plan-e", at + timedelta(minutes=1))
    spend(run_id, f"{run_id}-code", "1", f"{run_id}-code-e0", at + timedelta(minutes=4))
