"""Run history for quote tests, stored through the real ingest services (runs with their jobs,
then one priced LLM call per job), so the run ledger and the step rollup are what production
keeps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django_tenants.utils import schema_context

from tests.support import TestTenant, llm_event_in
from usage.domain.runs import JobUpdate, RunUpdate
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest


@dataclass(frozen=True)
class PastRun:
    run_id: str
    requested_at: datetime
    steps: tuple[tuple[str, Decimal], ...]  # (step name, AI cost of its one call)
    project: str = "web"
    template: str = "spa"
    run_type: str = "feature"
    status: str = "Succeeded"
    minutes: int = 10

    @property
    def ai_cost(self) -> Decimal:
        return sum((cost for _, cost in self.steps), Decimal(0))


def history_store(tenant: TestTenant, runs: list[PastRun]) -> None:
    updates, events = [], []
    for position, run in enumerate(runs):
        at = run.requested_at
        done = at + timedelta(minutes=run.minutes)
        finished = run.status in ("Succeeded", "Failed", "Cancelled")
        jobs = tuple(
            JobUpdate(
                job_id=f"{run.run_id}-{step}",
                attempt=1,
                status="Succeeded" if finished else "Running",
                timestamp=done if finished else at,
                step_name=step,
                started_at=at,
                finished_at=done if finished else None,
            )
            for step, _ in run.steps
        )
        updates.append(
            RunUpdate(
                position,
                run.run_id,
                run.project,
                run.status,
                done if finished else at,
                template_recipe_id=run.template,
                run_type=run.run_type,
                requested_at=at,
                started_at=at,
                finished_at=done if finished else None,
                jobs=jobs,
            )
        )
        events += [
            llm_event_in(
                f"{run.run_id}-{step}-call",
                at + timedelta(minutes=1),
                project=run.project,
                run_id=run.run_id,
                job_id=f"{run.run_id}-{step}",
                cost=cost,
            )
            for step, cost in run.steps
        ]
    with schema_context(tenant.schema):
        runs_ingest(updates=updates)
        events_ingest(events=events, pricer=pricer_for(tenant.tenant))
