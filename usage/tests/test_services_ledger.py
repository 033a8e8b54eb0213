"""The run ledger equals a recomputation from the raw rows after any mix of ingest, replays,
lifecycle updates with jobs and retries, re-pricing and a change of time zone (property test);
and per-run figures read the ledger."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

import pytest
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing.operator.models import TenantPriceOverride
from factory_portal.tenants.services import tenant_timezone_set
from tests.support import llm_event_in
from usage.domain.events import InfraEventIn
from usage.domain.runs import JobUpdate, RunUpdate
from usage.models import InfraUsageEvent, Job, LlmCostCorrection, LlmUsageEvent, RunLedger
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.reprice import llm_reprice
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

# Around the end of summer time in Berlin and Los Angeles, across a month end.
BASE = datetime(2026, 10, 24, 12, tzinfo=UTC)
RUNS = [f"run-{n}" for n in range(4)]
JOBS = ["plan", "build"]

calls = st.lists(
    st.tuples(
        st.integers(0, 9 * 24 * 60),  # minutes after BASE
        st.sampled_from([*RUNS, ""]),
        st.sampled_from([*JOBS, ""]),
        st.sampled_from(["client", "book", "unpriced"]),
        st.integers(0, 5000),  # input tokens
        st.integers(0, 2000),  # output tokens
    ),
    max_size=12,
)
infra = st.lists(
    st.tuples(
        st.integers(0, 9 * 24 * 60),
        st.sampled_from([*RUNS, ""]),
        st.sampled_from(["cpu_seconds", "gb_hours", "requests"]),
        st.integers(0, 500),
    ),
    max_size=6,
)
lifecycle = st.lists(
    st.tuples(
        st.sampled_from(RUNS),
        st.sampled_from(JOBS),
        st.integers(1, 3),  # attempt
        st.integers(0, 9 * 24 * 60),  # job start
        st.integers(0, 3 * 60 * 60 * 1000),  # job duration (ms)
        st.integers(1, 100),  # update time, minutes after start (later ones win)
    ),
    max_size=6,
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), calls, infra),
        st.tuples(st.just("replay"), st.integers(0, 50)),
        st.tuples(st.just("lifecycle"), lifecycle),
        st.tuples(st.just("reprice"), st.integers(0, 8), st.integers(24, 96)),
        st.tuples(st.just("zone"), st.sampled_from(["Europe/Berlin", "America/Los_Angeles"])),
    ),
    min_size=1,
    max_size=8,
)


def _recomputed(zone: ZoneInfo) -> dict[tuple[int, object], tuple]:
    """Each run's usage per local day, from the raw rows alone."""
    rows: dict[tuple[int, object], list] = defaultdict(lambda: [0, 0, 0, 0, Decimal(0), 0, 0, 0])
    deltas: dict[str, Decimal] = defaultdict(Decimal)
    latest: dict[str, Decimal | None] = {}
    for c in LlmCostCorrection.objects.order_by("id"):
        deltas[c.event_id] += c.delta
        latest[c.event_id] = c.new_cost
    for e in LlmUsageEvent.objects.filter(run__isnull=False):
        row = rows[(e.run_id, e.occurred_at.astimezone(zone).date())]
        unpriced = latest[e.event_id] is None if e.event_id in latest else e.cost is None
        row[0] += 1
        row[1] += unpriced
        row[2] += (e.input_tokens + e.output_tokens) if unpriced else 0
        row[3] += e.input_tokens + e.output_tokens
        row[4] += (e.cost or 0) + deltas[e.event_id]
    for i in InfraUsageEvent.objects.filter(run__isnull=False):
        row = rows[(i.run_id, i.occurred_at.astimezone(zone).date())]
        row[5] += 1
        row[6] += i.quantity if i.unit == "cpu_seconds" else 0
    for j in Job.objects.filter(started_at__isnull=False, duration_ms__gt=0):
        rows[(j.run_id, j.started_at.astimezone(zone).date())][7] += j.duration_ms
    return {key: tuple(values) for key, values in rows.items() if any(values)}


def _ledger() -> dict[tuple[int, object], tuple]:
    rows = {}
    for r in RunLedger.objects.all():
        values = (
            r.calls,
            r.unpriced_calls,
            r.unpriced_tokens,
            r.input_tokens + r.output_tokens,
            r.cost,
            r.infra_events,
            r.cpu_seconds,
            r.job_ms,
        )
        if any(values):
            rows[(r.run_id, r.day)] = values
    return rows


def test_the_ledger_equals_a_recomputation_from_raw_rows(alpha, monkeypatch):
    monkeypatch.setattr(alpha.tenant, "timezone", alpha.tenant.timezone)  # restored after
    ids = count()
    sent: list[list] = []

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps)
    def check(plan):  # type: ignore[no-untyped-def]
        with schema_context(alpha.schema):
            for step in plan:
                if step[0] == "ingest":
                    batch = []
                    for minute, run, job, kind, tokens_in, tokens_out in step[1]:
                        batch.append(
                            llm_event_in(
                                f"c{next(ids)}",
                                BASE + timedelta(minutes=minute),
                                project="web",
                                run_id=run,
                                job_id=job if run else "",
                                provider="anthropic" if kind != "unpriced" else "self-hosted",
                                model="claude-sonnet-4-5"
                                if kind != "unpriced"
                                else "model-without-a-price",
                                input_tokens=tokens_in,
                                output_tokens=tokens_out,
                                cost=Decimal(tokens_in) / 10**6 if kind == "client" else None,
                            )
                        )
                    for minute, run, unit, quantity in step[2]:
                        batch.append(
                            InfraEventIn(
                                0,
                                f"i{next(ids)}",
                                BASE + timedelta(minutes=minute),
                                "web",
                                run,
                                "",
                                "",
                                "compute",
                                Decimal(quantity),
                                unit,
                            )
                        )
                    events_ingest(events=batch, pricer=pricer_for(alpha.tenant))
                    sent.append(batch)
                elif step[0] == "replay" and sent:
                    events_ingest(events=sent[step[1] % len(sent)], pricer=pricer_for(alpha.tenant))
                elif step[0] == "lifecycle":
                    updates = []
                    for n, (run, job, attempt, start, ms, later) in enumerate(step[1]):
                        started = BASE + timedelta(minutes=start)
                        updates.append(
                            RunUpdate(
                                n,
                                run,
                                "web",
                                "Running",
                                started + timedelta(minutes=later),
                                requested_at=BASE,
                                jobs=(
                                    JobUpdate(
                                        job_id=job,
                                        step_name=job,
                                        attempt=attempt,
                                        status="Succeeded",
                                        timestamp=started + timedelta(minutes=later),
                                        started_at=started,
                                        finished_at=started + timedelta(milliseconds=ms),
                                        duration_ms=ms,
                                    ),
                                ),
                            )
                        )
                    runs_ingest(updates=updates)
                elif step[0] == "reprice":
                    # The in-house model gets a price for this re-pricing only (the next one
                    # takes it away again): stored calls are corrected both ways.
                    override = TenantPriceOverride.objects.create(
                        tenant=alpha.tenant,
                        provider="self-hosted",
                        model="model-without-a-price",
                        input_per_mtok=Decimal("0.10"),
                        output_per_mtok=Decimal("0.30"),
                        effective_from=BASE - timedelta(days=1),
                    )
                    start = BASE + timedelta(days=step[1])
                    corrected = llm_reprice(
                        start=start,
                        end=start + timedelta(hours=step[2]),
                        pricer=pricer_for(alpha.tenant),
                        reason="property test",
                    ).corrected
                    event("re-priced calls", corrected > 0)
                    override.delete()
                    llm_reprice(  # and without it: priced calls become unpriced again
                        start=start,
                        end=start + timedelta(hours=step[2] // 2),
                        pricer=pricer_for(alpha.tenant),
                        reason="property test, price withdrawn",
                    )
                elif step[0] == "zone":
                    tenant_timezone_set(tenant=alpha.tenant, timezone=step[1])
            zone = ZoneInfo(alpha.tenant.timezone)
            assert _ledger() == _recomputed(zone)

    check()
