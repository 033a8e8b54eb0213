"""Token pricing: pure functions, no database.

Prices are in USD per million tokens. ``input_tokens`` includes cached and cache-write tokens
(OpenTelemetry GenAI convention), so the uncached part is priced at the input price and the cached
parts at their own prices, falling back to the input price when a model has none.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import NamedTuple

from factory_portal.money import HUNDRED

MILLION = Decimal(1_000_000)
COST_QUANTUM = Decimal("0.0000000001")  # stored costs keep 10 decimal places


# Value objects built once per priced call are NamedTuples: as immutable as frozen dataclasses,
# and much cheaper to build on the ingest path.
class TokenCounts(NamedTuple):
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

    @cached_property
    def scaled(self) -> tuple[int, int | None, int, int, int]:
        """The input, output, cache-read and cache-write prices (the cache prices falling back to
        the input price) as integers over one power of ten, and that power's exponent less six
        (the prices are per million tokens): exact integer arithmetic for ``tokens_cost``."""
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        exponent = min(
            int(p.as_tuple().exponent)
            for p in (self.input, self.output, read, write)
            if p is not None
        )

        def scaled(price: Decimal) -> int:
            return int(price.scaleb(-exponent))

        output = None if self.output is None else scaled(self.output)
        return scaled(self.input), output, scaled(read), scaled(write), exponent - 6


def quantize_cost(amount: Decimal) -> Decimal:
    """Round a cost to the stored precision (10 decimal places, half-even)."""
    return amount.quantize(COST_QUANTUM)


def token_cost(tokens: TokenCounts, prices: TokenPrices) -> Decimal:
    """Cost in USD of one call, to 10 decimal places."""
    return tokens_cost(*tokens, prices)


def tokens_cost(
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int,
    cache_write_tokens: int,
    prices: TokenPrices,
) -> Decimal:
    """``token_cost`` of the four counts (``TokenCounts``' order), for loops over many calls.

    Uncached input tokens at the input price, cached and cache-write tokens at theirs, output
    tokens at the output price, summed as integers (``TokenPrices.scaled``) and rounded once to
    10 places, half-even: the same figure as the ``Decimal`` sum of the four products over a
    million for every cost below 10^15 USD (the cost column holds less than 10^10), where
    neither rounds before the last step."""
    uncached = input_tokens - cached_input_tokens - cache_write_tokens
    if uncached < 0:
        raise ValueError("cached and cache-write tokens exceed input tokens")
    price_input, price_output, price_read, price_write, exponent = prices.scaled
    total = uncached * price_input + cached_input_tokens * price_read
    if cache_write_tokens:
        total += cache_write_tokens * price_write
    if output_tokens:
        if price_output is None:
            raise ValueError("output tokens but no output price")
        total += output_tokens * price_output
    return Decimal(total).scaleb(exponent).quantize(COST_QUANTUM)


@dataclass(frozen=True)
class PricePoint:
    """One price book entry as the pricing code sees it.

    ``tier_start`` > 0 marks a tiered price: it applies to *all* tokens of a request whose input
    tokens exceed ``tier_start`` (the "cliff" model providers use), so tiers are chosen per request.
    """

    provider: str
    model: str
    token_kind: str  # input | output | cache_read | cache_write
    price_per_mtok: Decimal
    effective_from: datetime
    entry_id: int | None = None
    tier_start: int = 0


@dataclass(frozen=True)
class ResolvedPrices:
    prices: TokenPrices
    entry_id: int | None  # the input-price entry, recorded on the priced event


TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")


class PriceSchedule:
    """Price points indexed for lookup by (provider, model) at a moment in time."""

    def __init__(self, points: Iterable[PricePoint]) -> None:
        by_key: dict[tuple[str, str, str, int], list[PricePoint]] = defaultdict(list)
        for point in points:
            key = (point.provider, point.model, point.token_kind, point.tier_start)
            by_key[key].append(point)
        self._entries = {
            point.entry_id: point
            for values in by_key.values()
            for point in values
            if point.entry_id is not None
        }
        self._points: dict[tuple[str, str, str, int], tuple[list[datetime], list[PricePoint]]] = {}
        self._tiers: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for key, values in by_key.items():
            values.sort(key=lambda p: p.effective_from)
            self._points[key] = ([p.effective_from for p in values], values)
            self._tiers[key[:3]].append(key[3])
        for starts in self._tiers.values():
            starts.sort(reverse=True)
        # For memoising resolve(): per model, every moment any of its prices changes, and every
        # tier threshold; prices are constant between two changes and two thresholds.
        self._changes: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        self._thresholds: dict[tuple[str, str], list[int]] = defaultdict(list)
        for (provider, model, _kind, tier), (dates, _points) in self._points.items():
            self._changes[(provider, model)].extend(dates)
            self._thresholds[(provider, model)].append(tier)
        for model_key in self._changes:
            self._changes[model_key] = sorted(set(self._changes[model_key]))
            self._thresholds[model_key] = sorted(set(self._thresholds[model_key]))
        self._memo: dict[tuple[str, str, int, int], ResolvedPrices | None] = {}

    def _at(self, key: tuple[str, str, str, int], at: datetime) -> PricePoint | None:
        found = self._points.get(key)
        if found is None:
            return None
        dates, points = found
        index = bisect_right(dates, at)
        return points[index - 1] if index else None

    def _kind_at(
        self, provider: str, model: str, kind: str, at: datetime, input_tokens: int
    ) -> PricePoint | None:
        for start in self._tiers.get((provider, model, kind), ()):
            if start == 0 or input_tokens > start:
                point = self._at((provider, model, kind, start), at)
                if point is not None:
                    return point
        return None

    def entry(self, entry_id: int) -> PricePoint | None:
        """The price book entry with id ``entry_id`` (what a stored call's ``price_ref`` names)."""
        return self._entries.get(entry_id)

    def points_at(
        self, provider: str, model: str, at: datetime, input_tokens: int = 0
    ) -> dict[str, PricePoint | None]:
        """Each token kind's entry in force at ``at`` for a request of ``input_tokens`` input
        tokens (None for a kind the model has no price for)."""
        return {
            kind: self._kind_at(provider, model, kind, at, input_tokens) for kind in TOKEN_KINDS
        }

    def has_model(self, provider: str, model: str) -> bool:
        return (provider, model, "input") in self._tiers

    def resolve(
        self, provider: str, model: str, at: datetime, input_tokens: int = 0
    ) -> ResolvedPrices | None:
        """Prices in force at ``at`` for a request of ``input_tokens`` input tokens, or None when
        the model has no input price then. Memoised per price period and tier."""
        key = (provider, model)
        period = bisect_right(self._changes.get(key, ()), at)
        tier = bisect_left(self._thresholds.get(key, ()), input_tokens)
        memo_key = (provider, model, period, tier)
        if memo_key not in self._memo:
            self._memo[memo_key] = self._resolve(provider, model, at, input_tokens)
        return self._memo[memo_key]

    def _resolve(
        self, provider: str, model: str, at: datetime, input_tokens: int
    ) -> ResolvedPrices | None:
        found = {
            kind: self._kind_at(provider, model, kind, at, input_tokens) for kind in TOKEN_KINDS
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


@dataclass(frozen=True)
class ContractOverride:
    """A tenant's contract term: a discount on book prices, or its own prices for a model.

    Empty ``provider``/``model`` match any; the most specific matching override in force wins.
    """

    override_id: int | None
    provider: str
    model: str
    effective_from: datetime
    discount_percent: Decimal | None = None
    prices: TokenPrices | None = None

    def matches(self, provider: str, model: str) -> bool:
        return self.provider in ("", provider) and self.model in ("", model)

    @property
    def specificity(self) -> int:
        return (2 if self.model else 0) + (1 if self.provider else 0)


def override_in_force(
    overrides: Iterable[ContractOverride], provider: str, model: str, at: datetime
) -> ContractOverride | None:
    candidates = [o for o in overrides if o.effective_from <= at and o.matches(provider, model)]
    return max(candidates, key=lambda o: (o.specificity, o.effective_from), default=None)


class CallCost(NamedTuple):
    """What one call cost (USD, 10 decimal places) and which price entry and override said so."""

    cost: Decimal
    price_ref: int | None
    override_ref: int | None


def call_cost(
    schedule: PriceSchedule,
    overrides: Sequence[ContractOverride],
    provider: str,
    model: str,
    at: datetime,
    tokens: TokenCounts,
) -> CallCost | None:
    """Price one call after the tenant's contract, or None when nothing can price it (the call
    is then stored as unpriced, never as free)."""
    override = override_in_force(overrides, provider, model, at) if overrides else None
    override_id = override.override_id if override else None
    if override is not None and override.prices is not None:
        if tokens.output_tokens and override.prices.output is None:
            return None
        return CallCost(token_cost(tokens, override.prices), None, override_id)
    found = book_cost(schedule.resolve(provider, model, at, tokens.input_tokens), *tokens)
    if found is None or override is None:
        return found
    cost = found.cost
    if override.discount_percent is not None:
        cost = quantize_cost(cost * (HUNDRED - override.discount_percent) / HUNDRED)
    return CallCost(cost, found.price_ref, override_id)


def book_cost(
    resolved: ResolvedPrices | None,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int,
    cache_write_tokens: int,
) -> CallCost | None:
    """A call's cost at the book's ``resolved`` prices (``PriceSchedule.resolve``), before any
    contract: None when nothing is in force or the call has output tokens the model has no
    price for."""
    if resolved is None or (output_tokens and resolved.prices.output is None):
        return None
    cost = tokens_cost(
        input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, resolved.prices
    )
    return CallCost(cost, resolved.entry_id, None)


def prices_in_force(
    schedule: PriceSchedule,
    overrides: Sequence[ContractOverride],
    provider: str,
    model: str,
    at: datetime,
) -> TokenPrices | None:
    """The tenant's prices (USD per million tokens) for ``model`` at ``at``, base tier, after its
    contract: what ``call_cost`` would charge per token, for figures priced per token kind (a
    contract's discount applied to every price, as it applies to a call's cost). A missing cache
    price falls back to the input price, as ``token_cost`` does. None when nothing prices it."""
    override = override_in_force(overrides, provider, model, at) if overrides else None
    if override is not None and override.prices is not None:
        prices = override.prices
    else:
        resolved = schedule.resolve(provider, model, at, 0)
        if resolved is None:
            return None
        prices = resolved.prices
    factor = Decimal(1)
    if override is not None and override.prices is None and override.discount_percent is not None:
        factor = (HUNDRED - override.discount_percent) / HUNDRED
    return TokenPrices(
        input=prices.input * factor,
        output=None if prices.output is None else prices.output * factor,
        cache_read=(prices.cache_read if prices.cache_read is not None else prices.input) * factor,
        cache_write=(prices.cache_write if prices.cache_write is not None else prices.input)
        * factor,
    )


def priced(
    schedule: PriceSchedule, provider: str, model: str, at: datetime, tokens: TokenCounts
) -> tuple[Decimal, int | None] | None:
    """(cost, price entry id) of one call at book prices, or None when it cannot be priced."""
    found = call_cost(schedule, (), provider, model, at, tokens)
    return None if found is None else (found.cost, found.price_ref)
