"""Re-pricing a period writes correction entries and moves the rollups, never history."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django_tenants.utils import schema_context

from billing.operator.models import TenantPriceOverride
from tests.support import add_llm_call, llm_event_in
from usage import selectors
from usage.models import LlmCostCorrection, LlmUsageDaily, LlmUsageEvent, LlmUsageHourly, Project
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.reprice import llm_reprice

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 10, 14, 9, 30, tzinfo=UTC)


def _ingest_priced(alpha, count=3):
    with schema_context(alpha.schema):
        events = [
            llm_event_in(
                f"p-{i}", DAY + timedelta(minutes=i), input_tokens=1_000_000, output_tokens=0
            )
            for i in range(count)
        ]
        events_ingest(events=events, pricer=pricer_for(alpha.tenant))


def _rollup_cost(model):
    return model.objects.aggregate(c=Sum("cost"))["c"]


def test_a_price_correction_becomes_correction_entries(alpha):
    _ingest_priced(alpha)
    with schema_context(alpha.schema):
        original = LlmUsageEvent.objects.get(event_id="p-0").cost
        assert original == Decimal("2.0000000000")  # gpt-4.1: $2 per million input tokens
    TenantPriceOverride.objects.create(
        tenant=alpha.tenant,
        provider="openai",
        model="gpt-4.1",
        discount_percent=Decimal(25),
        effective_from=datetime(2026, 10, 1, tzinfo=UTC),
    )
    with schema_context(alpha.schema):
        result = llm_reprice(
            start=datetime(2026, 10, 1, tzinfo=UTC),
            end=datetime(2026, 11, 1, tzinfo=UTC),
            pricer=pricer_for(alpha.tenant),
            reason="contract signed late",
        )
        assert (result.examined, result.corrected) == (3, 3)
        assert result.delta == Decimal("-1.5000000000")
        correction = LlmCostCorrection.objects.get(event__event_id="p-0")
        assert (correction.previous_cost, correction.new_cost) == (Decimal(2), Decimal("1.5"))
        assert correction.override_ref is not None
        # history is kept: the stored cost did not change
        assert LlmUsageEvent.objects.get(event_id="p-0").cost == original
        assert _rollup_cost(LlmUsageHourly) == _rollup_cost(LlmUsageDaily) == Decimal("4.5")
        again = llm_reprice(
            start=datetime(2026, 10, 1, tzinfo=UTC),
            end=datetime(2026, 11, 1, tzinfo=UTC),
            pricer=pricer_for(alpha.tenant),
            reason="again",
        )
        assert again.corrected == 0
        assert LlmCostCorrection.objects.count() == 3


def test_unpriced_calls_get_priced_when_a_price_appears(alpha):
    with schema_context(alpha.schema):
        project = Project.objects.create(slug="p", name="P")
        add_llm_call(
            project=project,
            run=None,
            event_id="u",
            at=DAY,
            cost=None,
            input_tokens=2_000_000,
            output_tokens=0,
        )
        assert LlmUsageHourly.objects.get().unpriced_calls == 1
    TenantPriceOverride.objects.create(
        tenant=alpha.tenant,
        provider="self-hosted",
        model="model-without-a-price",
        input_per_mtok=Decimal("0.10"),
        output_per_mtok=Decimal("0.10"),
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    with schema_context(alpha.schema):
        result = llm_reprice(
            start=DAY - timedelta(days=1),
            end=DAY + timedelta(days=1),
            pricer=pricer_for(alpha.tenant),
            reason="in-house model costed",
        )
        hour = LlmUsageHourly.objects.get()
        totals = selectors.token_totals(start=DAY.date(), end=DAY.date() + timedelta(days=1))
    assert (result.corrected, result.newly_priced) == (1, 1)
    assert (hour.cost, hour.unpriced_calls) == (Decimal("0.2"), 0)
    assert totals.cost == Decimal("0.2") and totals.unpriced_calls == 0


def test_client_costs_are_never_repriced_and_dry_run_changes_nothing(alpha):
    with schema_context(alpha.schema):
        project = Project.objects.create(slug="p", name="P")
        add_llm_call(project=project, run=None, event_id="c", at=DAY, cost=Decimal("9"))
    _ingest_priced(alpha, count=1)
    TenantPriceOverride.objects.create(
        tenant=alpha.tenant,
        discount_percent=Decimal(50),
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    out = io.StringIO()
    call_command(
        "reprice",
        "--tenant",
        "alpha",
        "--start",
        "2026-10-01",
        "--end",
        "2026-11-01",
        "--reason",
        "check",
        "--dry-run",
        stdout=out,
    )
    assert "2 calls examined" not in out.getvalue()
    assert "1 calls examined, would correct 1" in out.getvalue()
    with schema_context(alpha.schema):
        assert not LlmCostCorrection.objects.exists()


def test_rebuilding_rollups_keeps_corrections(alpha):
    from factory_portal.tenants.connection import connection_zone
    from usage.services.rollups import rollups_rebuild

    with schema_context(alpha.schema):
        project = Project.objects.create(slug="p", name="P")
        add_llm_call(
            project=project,
            run=None,
            event_id="u",
            at=DAY,
            cost=None,
            input_tokens=2_000_000,
            output_tokens=0,
        )
    TenantPriceOverride.objects.create(
        tenant=alpha.tenant,
        provider="self-hosted",
        model="model-without-a-price",
        input_per_mtok=Decimal("0.10"),
        output_per_mtok=Decimal("0.10"),
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    with schema_context(alpha.schema):
        llm_reprice(
            start=DAY - timedelta(days=1),
            end=DAY + timedelta(days=1),
            pricer=pricer_for(alpha.tenant),
            reason="costed",
        )
        before = list(LlmUsageHourly.objects.values_list("cost", "unpriced_calls"))
        rollups_rebuild(zone=connection_zone())
        assert list(LlmUsageHourly.objects.values_list("cost", "unpriced_calls")) == before
        assert list(LlmUsageDaily.objects.values_list("cost", "unpriced_calls")) == [
            (Decimal("0.2"), 0)
        ]


def test_the_commands_days_are_the_tenants(alpha, monkeypatch):
    """``reprice --start/--end`` and ``price_override --from`` name the tenant's days: for a
    Tokyo tenant, a call at 20:00 UTC on Sep 30 is October 1st, so a term from October 1st
    prices it and re-pricing October takes it (both read the days as UTC before)."""
    from factory_portal.tenants.services import tenant_timezone_set

    monkeypatch.setattr(alpha.tenant, "timezone", alpha.tenant.timezone)  # restored after
    tenant_timezone_set(tenant=alpha.tenant, timezone="Asia/Tokyo")
    at = datetime(2026, 9, 30, 20, tzinfo=UTC)  # Tokyo: 2026-10-01 05:00
    with schema_context(alpha.schema):
        events_ingest(
            events=[llm_event_in("tokyo", at, input_tokens=1_000_000, output_tokens=0)],
            pricer=pricer_for(alpha.tenant),
        )
    out = io.StringIO()
    call_command(
        "price_override", "--tenant", "alpha", "--discount", "50", "--from", "2026-10-01",
        stdout=out,
    )  # fmt: skip
    term = TenantPriceOverride.objects.get()
    assert term.effective_from == datetime(2026, 9, 30, 15, tzinfo=UTC)
    assert "from 2026-10-01 00:00 Asia/Tokyo" in out.getvalue()
    out = io.StringIO()
    call_command(
        "reprice", "--tenant", "alpha", "--start", "2026-10-01", "--end", "2026-11-01",
        "--reason", "October's term", stdout=out,
    )  # fmt: skip
    assert "1 calls examined, corrected 1" in out.getvalue()
    with schema_context(alpha.schema):
        assert LlmCostCorrection.objects.get().new_cost * 2 == LlmUsageEvent.objects.get().cost
    with pytest.raises(CommandError, match="--end must be after --start"):
        call_command(
            "reprice", "--tenant", "alpha", "--start", "2026-10-01", "--end", "2026-10-01",
            "--reason", "x",
        )  # fmt: skip
    with pytest.raises(CommandError, match="--start: 'October' is not an ISO 8601 date"):
        call_command(
            "reprice", "--all-tenants", "--start", "October", "--end", "2026-10-01", "--reason", "x"
        )
