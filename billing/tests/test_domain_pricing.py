"""Token pricing (pure): exact Decimal costs, cache prices, effective dates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.pricing.domain import (
    CallCost,
    ContractOverride,
    PricePoint,
    PriceSchedule,
    TokenCounts,
    TokenPrices,
    call_cost,
    priced,
    token_cost,
)

SONNET = TokenPrices(
    input=Decimal(3), output=Decimal(15), cache_read=Decimal("0.3"), cache_write=Decimal("3.75")
)


def test_cost_of_a_call_is_exact():
    tokens = TokenCounts(
        input_tokens=10_000,
        output_tokens=2_000,
        cached_input_tokens=6_000,
        cache_write_tokens=1_000,
    )
    # 3,000 uncached x $3 + 6,000 x $0.30 + 1,000 x $3.75 + 2,000 x $15, per million tokens
    assert token_cost(tokens, SONNET) == Decimal("0.0445500000")


def test_missing_cache_prices_fall_back_to_the_input_price():
    prices = TokenPrices(input=Decimal(2), output=Decimal(8))
    tokens = TokenCounts(input_tokens=1_000, output_tokens=0, cached_input_tokens=400)
    assert token_cost(tokens, prices) == Decimal("0.0020000000")


def test_cached_tokens_beyond_input_are_refused():
    with pytest.raises(ValueError, match="exceed"):
        token_cost(TokenCounts(input_tokens=10, cached_input_tokens=11), SONNET)


@given(
    base=st.integers(0, 2_000_000),
    extra=st.integers(1, 1_000_000),
    output=st.integers(0, 200_000),
)
def test_more_tokens_never_cost_less(base, extra, output):
    cheaper = token_cost(TokenCounts(input_tokens=base, output_tokens=output), SONNET)
    dearer = token_cost(TokenCounts(input_tokens=base + extra, output_tokens=output), SONNET)
    assert dearer >= cheaper
    assert isinstance(dearer, Decimal)


def _points(kind: str, *prices: tuple[datetime, str]) -> list[PricePoint]:
    return [
        PricePoint("openai", "gpt-x", kind, Decimal(p), at, entry_id=i)
        for i, (at, p) in enumerate(prices)
    ]


def test_schedule_uses_the_price_in_force_at_the_event_time():
    jan, jun = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    schedule = PriceSchedule(
        _points("input", (jan, "2"), (jun, "1")) + _points("output", (jan, "8"))
    )
    assert schedule.resolve("openai", "gpt-x", datetime(2025, 12, 31, tzinfo=UTC)) is None
    assert schedule.resolve("openai", "gpt-x", jan).prices.input == Decimal(2)
    assert schedule.resolve("openai", "gpt-x", datetime(2026, 5, 31, tzinfo=UTC)).prices.input == 2
    assert schedule.resolve("openai", "gpt-x", jun).prices.input == Decimal(1)
    assert schedule.resolve("openai", "unknown", jun) is None


def test_embedding_models_price_input_only():
    jan = datetime(2026, 1, 1, tzinfo=UTC)
    schedule = PriceSchedule(_points("input", (jan, "0.02")))
    found = priced(schedule, "openai", "gpt-x", jan, TokenCounts(input_tokens=1_000_000))
    assert found is not None and found[0] == Decimal("0.0200000000")
    assert (
        priced(schedule, "openai", "gpt-x", jan, TokenCounts(input_tokens=10, output_tokens=5))
        is None
    )


def test_tiered_prices_apply_per_request_to_all_tokens():
    jan = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        PricePoint("google", "g", "input", Decimal("1.25"), jan, entry_id=1),
        PricePoint("google", "g", "input", Decimal("2.50"), jan, entry_id=2, tier_start=200_000),
        PricePoint("google", "g", "output", Decimal(10), jan, entry_id=3),
        PricePoint("google", "g", "output", Decimal(15), jan, entry_id=4, tier_start=200_000),
    ]
    schedule = PriceSchedule(points)
    small = priced(schedule, "google", "g", jan, TokenCounts(input_tokens=200_000))
    large = priced(
        schedule, "google", "g", jan, TokenCounts(input_tokens=200_001, output_tokens=1_000)
    )
    assert small == (Decimal("0.2500000000"), 1)
    # the cliff: every token of the large request pays the tier price
    assert large == (Decimal("0.5150025000"), 2)
    # two small requests that together exceed the tier are still priced at the base rate
    assert small[0] * 2 == Decimal("0.5000000000")


def test_contract_overrides_discount_or_replace_book_prices():
    jan, jun = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    schedule = PriceSchedule(_points("input", (jan, "2")) + _points("output", (jan, "8")))
    tokens = TokenCounts(input_tokens=1_000_000, output_tokens=100_000)
    book = call_cost(schedule, [], "openai", "gpt-x", jun, tokens)
    assert book == CallCost(Decimal("2.8000000000"), 0, None)
    provider_wide = ContractOverride(7, "openai", "", jan, discount_percent=Decimal(10))
    for_model = ContractOverride(
        8, "openai", "gpt-x", jun, prices=TokenPrices(input=Decimal(1), output=Decimal(4))
    )
    assert call_cost(schedule, [provider_wide], "openai", "gpt-x", jun, tokens) == CallCost(
        Decimal("2.5200000000"), 0, 7
    )
    # the model-specific override wins once in force; before that the discount applies
    both = [provider_wide, for_model]
    assert call_cost(schedule, both, "openai", "gpt-x", jun, tokens) == CallCost(
        Decimal("1.4000000000"), None, 8
    )
    may = datetime(2026, 5, 31, tzinfo=UTC)
    assert call_cost(schedule, both, "openai", "gpt-x", may, tokens).override_ref == 7
    # a custom price can price a model the book does not know
    own = ContractOverride(
        9,
        "self-hosted",
        "coder",
        jan,
        prices=TokenPrices(input=Decimal("0.5"), output=Decimal("0.5")),
    )
    assert call_cost(schedule, [own], "self-hosted", "coder", jun, tokens).cost == Decimal(
        "0.5500000000"
    )
    assert call_cost(schedule, [], "self-hosted", "coder", jun, tokens) is None


@given(
    input_tokens=st.integers(0, 400_000),
    period=st.integers(0, 2),
)
def test_memoised_lookup_equals_a_fresh_lookup(input_tokens, period):
    dates = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 3, 5)]
    points = [
        PricePoint(
            "p", "m", kind, Decimal(n + i + 1), dates[i], entry_id=10 * i + n, tier_start=tier
        )
        for i in range(3)
        for n, (kind, tier) in enumerate([("input", 0), ("input", 128_000), ("output", 0)])
    ]
    at = dates[period]
    memoised = PriceSchedule(points)
    memoised.resolve("p", "m", dates[0], 5)  # warm the memo with other keys
    assert memoised.resolve("p", "m", at, input_tokens) == PriceSchedule(points).resolve(
        "p", "m", at, input_tokens
    )
