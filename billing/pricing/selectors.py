"""Reads of the price book (public schema) for pricing: the whole book as an indexed
``PriceSchedule``. Listing the book for the console's pages is ``billing.operator.selectors``."""

from __future__ import annotations

from billing.operator.models import PriceBookEntry
from billing.pricing.domain import PricePoint, PriceSchedule


def price_schedule() -> PriceSchedule:
    """The whole price book, indexed for in-process lookups (a few thousand rows)."""
    return PriceSchedule(
        PricePoint(
            provider=e.provider,
            model=e.model,
            token_kind=e.token_kind,
            price_per_mtok=e.price_per_mtok,
            effective_from=e.effective_from,
            entry_id=e.pk,
            tier_start=e.tier_start,
        )
        for e in PriceBookEntry.objects.all()
    )
