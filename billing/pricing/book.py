"""Writes to the price book (public schema)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.operator.models import PriceBookEntry
from billing.pricing.catalogue import catalogue_price_points, catalogue_version
from billing.pricing.domain import PricePoint

PRICE_QUANTUM = Decimal("0.0000000001")
BookKey = tuple[str, str, str, int]  # provider, model, token kind, tier start


@dataclass(frozen=True)
class RefreshResult:
    created: int
    changed: int
    unchanged: int
    version: str


def pricebook_refresh(*, points: list[PricePoint] | None = None) -> RefreshResult:
    """Bring the price book in line with the installed catalogue.

    Dated prices the book lacks are added. When the catalogue's price in force today differs from
    the book's, the catalogue price is added as a new entry effective now: history already priced
    with the old entry stays as it was (re-pricing a past period is an explicit operation, not a
    side effect of a refresh).
    """
    points = catalogue_price_points() if points is None else points
    version = catalogue_version()
    now = timezone.now()
    book: dict[BookKey, dict[datetime, Decimal]] = defaultdict(dict)
    for entry in PriceBookEntry.objects.all():
        key = (entry.provider, entry.model, entry.token_kind, entry.tier_start)
        book[key][entry.effective_from] = entry.price_per_mtok
    catalogue: dict[BookKey, dict[datetime, Decimal]] = defaultdict(dict)
    for point in points:
        key = (point.provider, point.model, point.token_kind, point.tier_start)
        catalogue[key][point.effective_from] = point.price_per_mtok.quantize(PRICE_QUANTUM)

    to_create: list[PriceBookEntry] = []
    changed = 0
    for key, dated in catalogue.items():
        stored = book[key]
        new = {at: price for at, price in dated.items() if at not in stored}
        to_create += [_entry(key, at, price, version) for at, price in new.items()]
        catalogue_now = _in_force(dated, now)
        if (
            stored
            and catalogue_now is not None
            and _in_force({**stored, **new}, now) != catalogue_now
        ):
            to_create.append(_entry(key, now, catalogue_now, version))
            changed += 1
    with transaction.atomic():
        PriceBookEntry.objects.bulk_create(to_create, batch_size=2000)
    created = len(to_create) - changed
    return RefreshResult(
        created=created, changed=changed, unchanged=len(points) - created, version=version
    )


def _in_force(dated: dict[datetime, Decimal], at: datetime) -> Decimal | None:
    started = [when for when in dated if when <= at]
    return dated[max(started)] if started else None


def _entry(key: BookKey, at: datetime, price: Decimal, version: str) -> PriceBookEntry:
    provider, model, kind, tier_start = key
    return PriceBookEntry(
        provider=provider,
        model=model,
        token_kind=kind,
        tier_start=tier_start,
        price_per_mtok=price,
        effective_from=at,
        source=PriceBookEntry.Source.CATALOGUE,
        source_version=version,
    )
