"""Reads the maintained ``genai-prices`` catalogue into price points (no database).

Each model's prices become entries per token kind and tier (tiered prices apply per request by its
input tokens); date-constrained prices become entries with that start date. Time-of-day prices
(off-peak discounts) are not modelled: the always-valid price is used, which the README documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ConditionalPrice, ModelPrice, StartDateConstraint, TieredPrices

from billing.pricing.domain import PricePoint
from factory_portal.periods import day_start

CATALOGUE_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_KIND_FIELDS = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
}


def catalogue_version() -> str:
    return genai_prices.__version__


def _tiers(value: Decimal | TieredPrices | None) -> list[tuple[int, Decimal]]:
    """(tier start, price) pairs: the base price at 0, then each tier of a tiered price."""
    if value is None:
        return []
    if isinstance(value, TieredPrices):
        return [(0, value.base)] + [(tier.start, tier.price) for tier in value.tiers]
    return [(0, Decimal(value))]


def _dated_prices(
    prices: ModelPrice | list[ConditionalPrice],
) -> Iterator[tuple[datetime, ModelPrice]]:
    if isinstance(prices, ModelPrice):
        yield CATALOGUE_EPOCH, prices
        return
    for conditional in prices:
        constraint = conditional.constraint
        if constraint is None:
            yield CATALOGUE_EPOCH, conditional.prices
        elif isinstance(constraint, StartDateConstraint):
            start = constraint.start_date
            yield day_start(start), conditional.prices


def catalogue_price_points() -> list[PricePoint]:
    """Every (provider, model, token kind, effective date) price in the installed catalogue."""
    points: dict[tuple[str, str, str, int, datetime], PricePoint] = {}
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            for effective_from, model_price in _dated_prices(model.prices):
                for kind, field in _KIND_FIELDS.items():
                    for tier_start, price in _tiers(getattr(model_price, field, None)):
                        key = (provider.id, model.id, kind, tier_start, effective_from)
                        points[key] = PricePoint(
                            provider=provider.id,
                            model=model.id,
                            token_kind=kind,
                            price_per_mtok=price,
                            effective_from=effective_from,
                            tier_start=tier_start,
                        )
    return list(points.values())


@lru_cache(maxsize=4096)
def catalogue_key(provider: str, model: str) -> tuple[str, str] | None:
    """The catalogue's (provider id, model id) for names as a client reports them, e.g.
    ('gcp.gemini', 'gemini-2.5-flash-001') -> ('google', 'gemini-2.5-flash'); None if unknown.
    About 100 us on a miss, so results are cached per name pair."""
    try:
        found_provider, found_model = data_snapshot.get_snapshot().find_provider_model(
            model, None, provider or None, None
        )
    except LookupError:
        return None
    return found_provider.id, found_model.id
