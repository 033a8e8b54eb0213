"""billing.selectors.savings on a real database: caching savings priced at the tenant's prices in
force each day (a contract's own prices), the hit-rate trend, a cheaper model per step from jobs
joined to calls, the minimum evidence, the bounded period, the cache and dismissals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing import services
from billing.selectors.savings import savings_report, savings_view
from billing.tests.savings_history import (
    FIRST_DAY,
    LAST_DAY,
    NOON,
    cached_calls,
    review_runs,
    sonnet_contract,
)
from factory_portal.money import quantize_cents
from tests.support import llm_event_in
from usage.pricing import pricer_for
from usage.selectors.savings import PeriodTooLong, step_model_pairs
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db


def _report(alpha):
    return savings_report(tenant=alpha.tenant, start=FIRST_DAY, end=LAST_DAY)


def test_caching_saving_and_write_premium_at_the_contract_prices(alpha):
    sonnet_contract(alpha.tenant)
    with schema_context(alpha.schema):
        cached_calls(alpha.tenant, NOON)
        report = _report(alpha)
    (row,) = report.caching
    assert (row.project, row.name, row.priced) == ("web", "anthropic/claude-sonnet-4-5", True)
    assert row.tokens.hit_rate == Decimal("0.6")
    assert row.saving.gross == Decimal("1.62")  # 0.6 Mtok x (3 - 0.30)
    assert row.saving.premium == Decimal("0.075")  # 0.1 Mtok x (3.75 - 3)
    assert report.caching_total.net == Decimal("1.545")
    assert report.hit_trend == {"anthropic/claude-sonnet-4-5": {"2026-10-05": Decimal("0.6")}}


def test_each_day_is_priced_at_the_prices_in_force_then(alpha):
    sonnet_contract(alpha.tenant)
    from billing.pricing.overrides import price_override_create

    price_override_create(
        tenant=alpha.tenant,
        provider="anthropic",
        model="claude-sonnet-4-5",
        input_per_mtok=Decimal(3),
        output_per_mtok=Decimal(15),
        cache_read_per_mtok=Decimal("0.60"),
        cache_write_per_mtok=Decimal("3.75"),
        effective_from=datetime(2026, 10, 8, tzinfo=UTC),
    )
    with schema_context(alpha.schema):
        cached_calls(alpha.tenant, NOON)
        cached_calls(alpha.tenant, NOON + timedelta(days=4))
        (row,) = _report(alpha).caching
    assert row.saving.gross == Decimal("1.62") + Decimal("1.44")  # 0.6 x 2.70, then 0.6 x 2.40


def test_a_cheaper_model_already_used_on_the_step_is_recommended_with_its_evidence(alpha):
    with schema_context(alpha.schema):
        review_runs(alpha.tenant, "claude-sonnet-4-5", 40, 36, "0.50", prefix="s")
        review_runs(alpha.tenant, "claude-haiku-4-5", 40, 36, "0.10", prefix="h")
        view = savings_view(tenant=alpha.tenant, start=FIRST_DAY, end=LAST_DAY)
    (rec,) = view.listed
    assert rec.kind == "model" and (rec.period_start, rec.period_end) == (FIRST_DAY, LAST_DAY)
    current, cheaper = rec.evidence["current"], rec.evidence["cheaper"]
    assert (current["model"], current["pairs"], current["first_pass"]) == (
        "claude-sonnet-4-5",
        40,
        36,
    )
    assert (cheaper["provider"], cheaper["model"]) == ("anthropic", "claude-haiku-4-5")
    assert cheaper["cost_per_pair"] == Decimal("0.1")
    # (0.50 - 0.10) per run of the step x 40 runs in 7 days, per 30 days
    assert quantize_cents(rec.monthly_saving) == quantize_cents(Decimal("0.4") * 40 * 30 / 7)


def test_no_recommendation_below_the_minimum_evidence_or_outside_the_tolerance(alpha):
    with schema_context(alpha.schema):
        review_runs(alpha.tenant, "claude-sonnet-4-5", 40, 36, "0.50", prefix="s")
        review_runs(alpha.tenant, "claude-haiku-4-5", 29, 29, "0.10", prefix="h")
        review_runs(alpha.tenant, "claude-opus-4-1", 40, 35, "0.20", prefix="o")  # 87.5 %
        report = _report(alpha)
    pairs = {row.model: row.pairs for row in report.step_models}
    assert pairs == {"claude-sonnet-4-5": 40, "claude-haiku-4-5": 29, "claude-opus-4-1": 40}
    assert report.recommendations == []


def test_the_pairs_query_is_bounded_to_31_days(alpha):
    start = datetime(2026, 10, 1, tzinfo=UTC)
    with schema_context(alpha.schema), pytest.raises(PeriodTooLong):
        step_model_pairs(start=start, end=start + timedelta(days=32))


def test_a_report_is_cached_until_its_data_changes(alpha):
    sonnet_contract(alpha.tenant)
    with schema_context(alpha.schema):
        cached_calls(alpha.tenant, NOON)
        first = _report(alpha)
        assert _report(alpha).computed_at == first.computed_at
        cached_calls(alpha.tenant, NOON + timedelta(days=1))
        again = _report(alpha)
    assert again.caching[0].tokens.input_tokens == 2_000_000


def test_a_dismissal_persists_moves_the_recommendation_and_is_undone(alpha):
    with schema_context(alpha.schema):
        review_runs(alpha.tenant, "claude-sonnet-4-5", 40, 36, "0.50", prefix="s")
        review_runs(alpha.tenant, "claude-haiku-4-5", 40, 36, "0.10", prefix="h")
        (rec,) = savings_view(tenant=alpha.tenant, start=FIRST_DAY, end=LAST_DAY).listed
        services.recommendation_dismiss(key=rec.key, by="admin@alpha.test", note="quality")
        view = savings_view(tenant=alpha.tenant, start=FIRST_DAY, end=LAST_DAY)
        assert view.listed == []
        ((dismissed, dismissal),) = view.dismissed
        assert dismissed.key == rec.key and dismissal.note == "quality"
        # Another range yields the same advice under the same key: still dismissed.
        wider = savings_view(tenant=alpha.tenant, start=FIRST_DAY, end=LAST_DAY + timedelta(1))
        assert [r.key for r, _ in wider.dismissed] == [rec.key]
        assert services.recommendation_restore(key=rec.key)
        assert savings_view(tenant=alpha.tenant, start=FIRST_DAY, end=LAST_DAY).listed == [rec]


def test_a_pair_counts_under_the_model_it_spent_most_on_and_unpriced_pairs_are_left_out(alpha):
    with schema_context(alpha.schema):
        review_runs(alpha.tenant, "claude-sonnet-4-5", 40, 36, "0.50", prefix="s")
        extra = [
            llm_event_in(
                "opus-0",
                NOON,
                project="web",
                run_id="s-0",
                job_id="s-0-review",
                provider="anthropic",
                model="claude-opus-4-1",
                cost=Decimal("1.00"),
            ),
            llm_event_in(
                "free-1",
                NOON,
                project="web",
                run_id="s-1",
                job_id="s-1-review",
                provider="self-hosted",
                model="model-without-a-price",
            ),
        ]
        events_ingest(events=extra, pricer=pricer_for(alpha.tenant))
        rows = {row.model: row for row in _report(alpha).step_models}
    assert rows["claude-opus-4-1"].pairs == 1
    assert rows["claude-opus-4-1"].cost == Decimal("1.50")  # the pair's cost on every model
    assert rows["claude-sonnet-4-5"].pairs == 38
    assert rows["claude-sonnet-4-5"].cost == Decimal("19.00")


def test_the_pairs_are_reread_after_their_data_changed_and_15_minutes_passed(alpha):
    start = datetime(2026, 10, 20, 12, tzinfo=UTC)
    with schema_context(alpha.schema):
        review_runs(alpha.tenant, "claude-sonnet-4-5", 2, 2, "0.50", prefix="s")
        first = savings_report(tenant=alpha.tenant, start=FIRST_DAY, end=LAST_DAY, now=start)
        review_runs(alpha.tenant, "claude-haiku-4-5", 3, 3, "0.10", prefix="h")
        soon = start + timedelta(minutes=5)
        kept = savings_report(tenant=alpha.tenant, start=FIRST_DAY, end=LAST_DAY, now=soon)
        later = start + timedelta(minutes=16)
        reread = savings_report(tenant=alpha.tenant, start=FIRST_DAY, end=LAST_DAY, now=later)
    assert kept.computed_at == soon and kept.evidence_at == start  # caching figures are live
    assert {row.model for row in kept.step_models} == {"claude-sonnet-4-5"}
    assert reread.evidence_at == later
    assert {row.model for row in reread.step_models} == {"claude-sonnet-4-5", "claude-haiku-4-5"}
    assert first.step_models == kept.step_models
