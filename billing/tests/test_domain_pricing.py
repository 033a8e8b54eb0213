"""Token pricing (pure): exact Decimal costs, cache prices, effective dates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.domain.pricing import (
    PricePoint,
    PriceSchedule,
    TokenCounts,
    TokenPrices,
    priced,
    quantize_cents,
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


def test_cents_round_half_even():
    assert quantize_cents(Decimal("0.125")) == Decimal("0.12")
    assert quantize_cents(Decimal("0.135")) == Decimal("0.14")


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
