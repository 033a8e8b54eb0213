"""Reads of the price book (public schema) for pricing: the whole book as an indexed
``PriceSchedule``, and the version of the prices (book and contract terms). Listing the book
for the console's pages is ``billing.operator.selectors``."""

from __future__ import annotations

from billing.operator.models import PriceBookEntry, PricesVersion
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


def prices_version() -> int | None:
    """The version of the price book and the tenants' contract terms: it changes in every
    transaction that writes either (triggers, ``PricesVersion``). One row, read through the ORM
    like the prices, so from the same database: a page reading a replica never pairs the
    primary's version with the replica's book. The aggregate it replaces (count and largest id
    of the book's entries) read the whole book, 0.5 ms of PostgreSQL at 6,800 entries, for every
    batch ingested, and missed an entry changed in place."""
    return PricesVersion.objects.values_list("version", flat=True).first()
