"""Reads the maintained ``genai-prices`` catalogue into price points (no database).

Each model's base prices become entries per token kind; date-constrained prices become entries
with that start date. Time-of-day prices (off-peak discounts) and tiered surcharges above a context
size are not modelled: the base price is used, which the README documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ConditionalPrice, ModelPrice, StartDateConstraint, TieredPrices

from billing.domain.pricing import PricePoint

CATALOGUE_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_KIND_FIELDS = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
}


def catalogue_version() -> str:
    return genai_prices.__version__


def _base(value: Decimal | TieredPrices | None) -> Decimal | None:
    if value is None:
        return None
    return value.base if isinstance(value, TieredPrices) else Decimal(value)


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
            yield datetime(start.year, start.month, start.day, tzinfo=UTC), conditional.prices


def catalogue_price_points() -> list[PricePoint]:
    """Every (provider, model, token kind, effective date) price in the installed catalogue."""
    points: dict[tuple[str, str, str, datetime], PricePoint] = {}
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            for effective_from, model_price in _dated_prices(model.prices):
                for kind, field in _KIND_FIELDS.items():
                    price = _base(getattr(model_price, field, None))
                    if price is None:
                        continue
                    key = (provider.id, model.id, kind, effective_from)
                    points[key] = PricePoint(
                        provider=provider.id,
                        model=model.id,
                        token_kind=kind,
                        price_per_mtok=price,
                        effective_from=effective_from,
                    )
    return list(points.values())
