"""Pricing a batch of calls at once (the ingest path) equals pricing them one by one, and the
integer arithmetic of ``tokens_cost`` equals the plain Decimal sum it replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.pricing.domain import (
    COST_QUANTUM,
    ContractOverride,
    PricePoint,
    PriceSchedule,
    TokenCounts,
    TokenPrices,
    call_cost,
    tokens_cost,
)
from billing.pricing.pricer import TenantPricer
from usage.domain.limits import MAX_TOKENS


def decimal_cost(tokens: TokenCounts, prices: TokenPrices) -> Decimal:
    """The cost as a sum of Decimal products over a million, rounded to 10 places."""
    read = prices.input if prices.cache_read is None else prices.cache_read
    write = prices.input if prices.cache_write is None else prices.cache_write
    uncached = tokens.input_tokens - tokens.cached_input_tokens - tokens.cache_write_tokens
    total = (
        uncached * prices.input
        + tokens.cached_input_tokens * read
        + tokens.cache_write_tokens * write
        + tokens.output_tokens * (prices.output or 0)
    )
    return (total / Decimal(1_000_000)).quantize(COST_QUANTUM)


# Prices as the book stores them (up to 10 places), zero included; some are whole numbers.
price = st.decimals(min_value=0, max_value=10_000, places=10) | st.integers(0, 100).map(Decimal)
# Up to the column's limit (20 digits, 10 places).
extreme_price = st.decimals(min_value=0, max_value=Decimal("9999999999.9999999999"), places=10)


@given(
    counts=st.lists(st.integers(0, MAX_TOKENS // 4), min_size=4, max_size=4),
    prices=st.tuples(price, price | st.none(), price | st.none(), price | st.none()),
)
def test_integer_sum_equals_the_decimal_sum(counts, prices):
    cached, write, uncached, output = counts
    tokens = TokenCounts(uncached + cached + write, output, cached, write)
    prices = TokenPrices(*prices)
    if output and prices.output is None:
        return  # refused (below)
    cost = tokens_cost(*tokens, prices)
    assert cost == decimal_cost(tokens, prices)
    assert cost.as_tuple().exponent == -10


@given(
    counts=st.lists(st.integers(0, 1_000_000), min_size=4, max_size=4),
    prices=st.tuples(extreme_price, extreme_price, extreme_price | st.none(), extreme_price),
)
def test_integer_sum_equals_the_decimal_sum_at_the_columns_limits(counts, prices):
    """Prices as large and as precise as the book's column holds (costs up to about 4 x 10^10
    USD, beyond what the cost column stores)."""
    cached, write, uncached, output = counts
    tokens = TokenCounts(uncached + cached + write, output, cached, write)
    prices = TokenPrices(*prices)
    assert tokens_cost(*tokens, prices) == decimal_cost(tokens, prices)


def test_output_without_an_output_price_is_refused():
    prices = TokenPrices(input=Decimal(1), output=None)
    assert tokens_cost(10, 0, 0, 0, prices) == Decimal("0.0000100000")
    try:
        tokens_cost(10, 1, 0, 0, prices)
    except ValueError as exc:
        assert "output" in str(exc)
    else:
        raise AssertionError("an output token without an output price was priced")


class Call(NamedTuple):
    provider: str
    model: str
    occurred_at: datetime
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int


JAN = datetime(2026, 1, 1, tzinfo=UTC)
# Two models with price changes and a long-context tier, one without an output price
# (embeddings), one the book does not know.
POINTS = [
    PricePoint("openai", "chat", "input", Decimal("2.5"), JAN, entry_id=1),
    PricePoint("openai", "chat", "output", Decimal(10), JAN, entry_id=2),
    PricePoint("openai", "chat", "cache_read", Decimal("1.25"), JAN, entry_id=3),
    PricePoint("openai", "chat", "input", Decimal("2.0"), JAN + timedelta(days=40), entry_id=4),
    PricePoint("openai", "chat", "input", Decimal(5), JAN, entry_id=5, tier_start=200_000),
    PricePoint("openai", "chat", "output", Decimal(20), JAN, entry_id=6, tier_start=200_000),
    PricePoint("anthropic", "big", "input", Decimal(15), JAN, entry_id=7),
    PricePoint("anthropic", "big", "output", Decimal(75), JAN, entry_id=8),
    PricePoint("anthropic", "big", "cache_write", Decimal("18.75"), JAN, entry_id=9),
    PricePoint("openai", "embed", "input", Decimal("0.02"), JAN, entry_id=10),
]
MODELS = [("openai", "chat"), ("anthropic", "big"), ("openai", "embed"), ("acme", "unknown")]

calls = st.builds(
    lambda model, days, cached, write, extra, output: Call(
        *model, JAN + timedelta(days=days), cached + write + extra, output, cached, write
    ),
    st.sampled_from(MODELS),
    st.integers(-10, 90),  # some before the first price
    st.integers(0, 100_000),
    st.integers(0, 50_000),
    st.integers(0, 300_000),  # some over the tier
    st.integers(0, 20_000) | st.just(0),
)
OVERRIDES = [
    ContractOverride(11, "openai", "", JAN + timedelta(days=20), discount_percent=Decimal(15)),
    ContractOverride(
        12, "anthropic", "big", JAN, prices=TokenPrices(input=Decimal(12), output=Decimal(60))
    ),
]


@settings(max_examples=60)
@given(batch=st.lists(calls, max_size=40))
def test_a_batch_is_priced_as_each_call_alone(batch):
    """The book's loop (a tenant without contract terms; with them, ``price_all`` prices each
    call through ``call_cost`` itself)."""
    schedule = PriceSchedule(POINTS)
    one_by_one = []
    for c in batch:
        tokens = TokenCounts(*c[3:])
        found = call_cost(schedule, [], c.provider, c.model, c.occurred_at, tokens)
        one_by_one.append(None if found is None else tuple(found))
    priced = TenantPricer(schedule, []).price_all(batch)
    assert [None if p is None else tuple(p) for p in priced] == one_by_one


def test_contract_terms_still_apply_in_a_batch():
    """A tenant with contract terms: its own prices and its discount, as ``call_cost`` says."""
    schedule = PriceSchedule(POINTS)
    at = JAN + timedelta(days=30)
    batch = [
        Call("anthropic", "big", at, 100_000, 0, 0, 0),  # own prices: $12 a million input
        Call("openai", "chat", at, 100_000, 0, 0, 0),  # book $2.50 less 15%
        Call("openai", "chat", JAN, 100_000, 0, 0, 0),  # before the discount: book
    ]
    priced = TenantPricer(schedule, OVERRIDES).price_all(batch)
    assert [(p.cost, p.price_ref, p.override_ref) for p in priced] == [
        (Decimal("1.2000000000"), None, 12),
        (Decimal("0.2125000000"), 1, 11),
        (Decimal("0.2500000000"), 1, None),
    ]
