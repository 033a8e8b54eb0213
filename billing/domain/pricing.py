"""Token pricing: pure functions, no database.

Prices are in USD per million tokens. ``input_tokens`` includes cached and cache-write tokens
(OpenTelemetry GenAI convention), so the uncached part is priced at the input price and the cached
parts at their own prices, falling back to the input price when a model has none.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

MILLION = Decimal(1_000_000)
COST_QUANTUM = Decimal("0.0000000001")  # stored costs keep 10 decimal places
CENT = Decimal("0.01")


@dataclass(frozen=True)
class TokenCounts:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class TokenPrices:
    """USD per million tokens; cache prices are optional."""

    input: Decimal
    output: Decimal | None  # embedding models have no output price
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None


def quantize_cost(amount: Decimal) -> Decimal:
    """Round a cost to the stored precision (10 decimal places, half-even)."""
    return amount.quantize(COST_QUANTUM)


def quantize_cents(amount: Decimal) -> Decimal:
    """Round an amount to cents for display and export (half-even)."""
    return amount.quantize(CENT)


def token_cost(tokens: TokenCounts, prices: TokenPrices) -> Decimal:
    """Cost in USD of one call, to 10 decimal places."""
    uncached = tokens.input_tokens - tokens.cached_input_tokens - tokens.cache_write_tokens
    if uncached < 0:
        raise ValueError("cached and cache-write tokens exceed input tokens")
    if tokens.output_tokens and prices.output is None:
        raise ValueError("output tokens but no output price")
    cache_read = prices.cache_read if prices.cache_read is not None else prices.input
    cache_write = prices.cache_write if prices.cache_write is not None else prices.input
    total = (
        uncached * prices.input
        + tokens.cached_input_tokens * cache_read
        + tokens.cache_write_tokens * cache_write
        + tokens.output_tokens * (prices.output or 0)
    )
    return quantize_cost(total / MILLION)


@dataclass(frozen=True)
class PricePoint:
    """One price book entry as the pricing code sees it."""

    provider: str
    model: str
    token_kind: str  # input | output | cache_read | cache_write
    price_per_mtok: Decimal
    effective_from: datetime
    entry_id: int | None = None


@dataclass(frozen=True)
class ResolvedPrices:
    prices: TokenPrices
    entry_id: int | None  # the input-price entry, recorded on the priced event


class PriceSchedule:
    """Price points indexed for lookup by (provider, model) at a moment in time."""

    def __init__(self, points: Iterable[PricePoint]) -> None:
        by_key: dict[tuple[str, str, str], list[PricePoint]] = defaultdict(list)
        for point in points:
            by_key[(point.provider, point.model, point.token_kind)].append(point)
        self._points: dict[tuple[str, str, str], tuple[list[datetime], list[PricePoint]]] = {}
        for key, values in by_key.items():
            values.sort(key=lambda p: p.effective_from)
            self._points[key] = ([p.effective_from for p in values], values)

    def _at(self, provider: str, model: str, kind: str, at: datetime) -> PricePoint | None:
        found = self._points.get((provider, model, kind))
        if found is None:
            return None
        dates, points = found
        index = bisect_right(dates, at)
        return points[index - 1] if index else None

    def has_model(self, provider: str, model: str) -> bool:
        return (provider, model, "input") in self._points

    def resolve(self, provider: str, model: str, at: datetime) -> ResolvedPrices | None:
        """Prices in force at ``at``, or None when the model has no input price then."""
        found = {
            kind: self._at(provider, model, kind, at)
            for kind in ("input", "output", "cache_read", "cache_write")
        }
        if found["input"] is None:
            return None
        return ResolvedPrices(
            prices=TokenPrices(
                input=found["input"].price_per_mtok,
                output=found["output"].price_per_mtok if found["output"] else None,
                cache_read=found["cache_read"].price_per_mtok if found["cache_read"] else None,
                cache_write=found["cache_write"].price_per_mtok if found["cache_write"] else None,
            ),
            entry_id=found["input"].entry_id,
        )


def priced(
    schedule: PriceSchedule, provider: str, model: str, at: datetime, tokens: TokenCounts
) -> tuple[Decimal, int | None] | None:
    """(cost, price entry id) of one call, or None when the price book cannot price it."""
    resolved = schedule.resolve(provider, model, at)
    if resolved is None or (tokens.output_tokens and resolved.prices.output is None):
        return None
    return token_cost(tokens, resolved.prices), resolved.entry_id
