"""A small history for the savings tests, stored through the real ingest services (rollups
included) in the current schema: cached calls priced by a contract's own prices, and a review
step done by two models with known first-pass success and cost."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from billing.pricing.overrides import price_override_create
from factory_portal.tenants.models import Tenant
from tests.support import llm_event_in
from usage.domain.runs import JobUpdate, RunUpdate
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

FIRST_DAY = date(2026, 10, 5)
LAST_DAY = date(2026, 10, 11)
NOON = datetime(2026, 10, 5, 12, tzinfo=UTC)
SONNET = ("anthropic", "claude-sonnet-4-5")


def sonnet_contract(tenant: Tenant, **prices: str) -> None:
    """Contract prices for claude-sonnet-4-5 from 1 Oct 2026 (USD per Mtok)."""
    values = {"input": "3", "output": "15", "cache_read": "0.30", "cache_write": "3.75", **prices}
    price_override_create(
        tenant=tenant,
        provider=SONNET[0],
        model=SONNET[1],
        input_per_mtok=Decimal(values["input"]),
        output_per_mtok=Decimal(values["output"]),
        cache_read_per_mtok=Decimal(values["cache_read"]),
        cache_write_per_mtok=Decimal(values["cache_write"]),
        effective_from=datetime(2026, 10, 1, tzinfo=UTC),
    )


def cached_calls(tenant: Tenant, at: datetime, *, prefix: str = "c", project: str = "web") -> None:
    """One priced sonnet call at ``at``: 1 Mtok input of which 600k cached, 100k written."""
    events_ingest(
        events=[
            llm_event_in(
                f"{prefix}-{at:%Y%m%d%H}",
                at,
                project=project,
                provider=SONNET[0],
                model=SONNET[1],
                input_tokens=1_000_000,
                output_tokens=0,
                cached_input_tokens=600_000,
                cache_write_tokens=100_000,
            )
        ],
        pricer=pricer_for(tenant),
    )


def review_runs(
    tenant: Tenant, model: str, runs: int, first_pass: int, cost: str, *, prefix: str
) -> None:
    """``runs`` runs of template ``spa`` whose one ``review`` job called ``model`` once for
    ``cost`` (client-supplied); the first ``first_pass`` succeed at their first attempt, the
    others after a retry."""
    updates = []
    events = []
    for n in range(runs):
        at = NOON + timedelta(minutes=n)
        job = f"{prefix}-{n}-review"
        attempts = [JobUpdate(job, 1, "Succeeded" if n < first_pass else "Failed", at, "review")]
        if n >= first_pass:
            attempts.append(JobUpdate(job, 2, "Succeeded", at + timedelta(seconds=30), "review"))
        updates.append(
            RunUpdate(
                position=n,
                run_id=f"{prefix}-{n}",
                project="web",
                status="Succeeded",
                timestamp=at + timedelta(minutes=1),
                template_recipe_id="spa",
                requested_at=at,
                started_at=at,
                finished_at=at + timedelta(minutes=1),
                jobs=tuple(attempts),
            )
        )
        events.append(
            llm_event_in(
                f"{prefix}-call-{n}",
                at,
                project="web",
                run_id=f"{prefix}-{n}",
                job_id=job,
                provider="anthropic",
                model=model,
                cost=Decimal(cost),
            )
        )
    runs_ingest(updates=updates)
    events_ingest(events=events, pricer=pricer_for(tenant))
