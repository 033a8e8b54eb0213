"""billing.domain.savings without a database: caching savings and the write premium in Decimal
at known prices, the tolerance's exact edge, the minimum evidence, the monthly estimate, the
caching advice's evidence rules and stable keys."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing.domain.savings import (
    CacheSaving,
    CacheTokens,
    ModelCacheUse,
    StepModel,
    cache_saving,
    caching_advice,
    cheaper_models,
    recommendation_key,
    within_tolerance,
)
from billing.pricing.domain import TokenCounts, TokenPrices, token_cost

# claude-sonnet-4-5's list prices: input $3, cache read $0.30, cache write $3.75 per Mtok
SONNET = TokenPrices(Decimal(3), Decimal(15), Decimal("0.30"), Decimal("3.75"))


def test_caching_saving_is_cached_tokens_times_the_price_difference():
    saving = cache_saving(CacheTokens(5_000_000, 2_000_000, 1_000_000), SONNET)
    assert saving.gross == Decimal("5.4")  # 2 Mtok x (3 - 0.30)
    assert saving.premium == Decimal("0.75")  # 1 Mtok x (3.75 - 3)
    assert saving.net == Decimal("4.65")


def test_a_model_without_cache_prices_saves_nothing():
    plain = TokenPrices(Decimal(2), Decimal(8))
    assert cache_saving(CacheTokens(1000, 800, 100), plain) == CacheSaving(Decimal(0), Decimal(0))


@given(
    uncached=st.integers(0, 10**9),
    cached=st.integers(0, 10**9),
    written=st.integers(0, 10**9),
)
def test_net_saving_is_exactly_what_the_same_tokens_would_cost_uncached_minus_their_cost(
    uncached, cached, written
):
    """The saving agrees with the pricing rules: pricing the cached and written tokens as plain
    input costs exactly ``net`` more (to the stored precision)."""
    total = uncached + cached + written
    actual = token_cost(TokenCounts(total, 0, cached, written), SONNET)
    without = token_cost(TokenCounts(total, 0, 0, 0), SONNET)
    saving = cache_saving(CacheTokens(total, cached, written), SONNET)
    assert abs((without - actual) - saving.net) <= Decimal("0.0000000002")


def _step(model: str, pairs: int, first_pass: int, cost: str, step: str = "review") -> StepModel:
    return StepModel("spa", step, "anthropic", model, pairs, first_pass, Decimal(cost))


def test_tolerance_edge_is_inclusive_and_exact():
    current = _step("sonnet", 100, 90, "100")  # 90 %
    assert within_tolerance(_step("haiku", 100, 88, "10"), current, Decimal(2))  # 88 %: edge
    assert not within_tolerance(_step("haiku", 1000, 879, "10"), current, Decimal(2))  # 87.9 %
    assert within_tolerance(_step("haiku", 50, 50, "10"), current, Decimal(0))  # better is fine


def test_a_cheaper_model_within_tolerance_with_its_monthly_saving():
    rows = [_step("sonnet", 60, 54, "30.00"), _step("haiku", 40, 35, "4.00")]  # 90 % / 87.5 %
    found = cheaper_models(rows, period_days=15, tolerance_points=Decimal("2.5"))
    assert len(found) == 1
    only = found[0]
    assert (only.current.model, only.cheaper.model) == ("sonnet", "haiku")
    # (0.50 - 0.10) per pair x 60 pairs in 15 days -> 120 pairs a month
    assert only.monthly_pairs == Decimal(120)
    assert only.monthly_saving == Decimal("48.00")
    assert cheaper_models(rows, period_days=15, tolerance_points=Decimal("2.4")) == []


def test_minimum_evidence_on_both_models():
    rows = [_step("sonnet", 60, 54, "30"), _step("haiku", 29, 29, "1")]
    assert cheaper_models(rows, period_days=30) == []
    assert cheaper_models(rows, period_days=30, min_pairs=29)
    other_step = [_step("sonnet", 60, 54, "30"), _step("haiku", 60, 60, "1", step="plan")]
    assert cheaper_models(other_step, period_days=30) == []


def test_the_cheapest_qualifying_model_is_recommended_and_never_a_dearer_one():
    rows = [
        _step("opus", 40, 36, "80"),
        _step("sonnet", 40, 36, "20"),
        _step("haiku", 40, 30, "4"),  # 75 %: too far below
    ]
    found = {(c.current.model, c.cheaper.model) for c in cheaper_models(rows, period_days=30)}
    assert found == {("opus", "sonnet")}


def _use(project: str, model: str, input_tokens: int, cached: int, written: int = 0):
    return ModelCacheUse(
        project, "anthropic", model, CacheTokens(input_tokens, cached, written), SONNET
    )


def test_caching_advice_needs_a_reference_that_reached_a_good_hit_rate():
    low = _use("web", "sonnet", 10_000_000, 100_000)
    assert caching_advice([low], period_days=30) == []  # nothing in the tenant caches
    good = _use("api", "sonnet", 10_000_000, 6_000_000, 1_000_000)
    (advice,) = caching_advice([low, good], period_days=30)
    assert advice.use is low and "project api" in advice.reference
    # 10 Mtok/month x ((0.60 - 0.01) x 2.70 - (0.10 - 0) x 0.75) per Mtok
    assert advice.monthly_saving == Decimal("15.18")
    too_small = _use("web", "sonnet", 999_999, 0)
    assert caching_advice([too_small, good], period_days=30) == []


def test_recommendation_keys_are_stable_and_distinct():
    key = recommendation_key("model", "spa", "review", "a/sonnet", "a/haiku")
    assert key == recommendation_key("model", "spa", "review", "a/sonnet", "a/haiku")
    assert key != recommendation_key("model", "spa", "review", "a/haiku", "a/sonnet")
    assert key.startswith("model-") and len(key) == len("model-") + 16


_models = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(1, 200),  # pairs
        st.floats(0, 1),  # share passing first time
        st.integers(1, 10_000),  # cost in cents
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda m: m[0],
)


@given(models=_models, tolerance=st.integers(0, 10), days=st.integers(1, 31))
def test_every_recommendation_holds_its_rules(models, tolerance, days):
    rows = [
        _step(name, pairs, round(pairs * share), str(Decimal(cents) / 100))
        for name, pairs, share, cents in models
    ]
    for found in cheaper_models(rows, period_days=days, tolerance_points=Decimal(tolerance)):
        current, cheaper = found.current, found.cheaper
        assert current.pairs >= 30 and cheaper.pairs >= 30
        assert cheaper.cost_per_pair < current.cost_per_pair and found.monthly_saving > 0
        gap = (current.first_pass_rate - cheaper.first_pass_rate) * 100
        assert gap <= tolerance + Decimal("1e-20")
        # the cheapest qualifying model: none cheaper also qualifies
        assert not any(
            other.cost_per_pair < cheaper.cost_per_pair
            and other.pairs >= 30
            and other is not current
            and within_tolerance(other, current, Decimal(tolerance))
            for other in rows
        )
