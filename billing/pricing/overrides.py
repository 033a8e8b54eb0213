"""Writing tenants' contract terms (price overrides) in the public schema.

A term is either a discount on book prices or custom prices (USD per million tokens) for a
provider and/or model; the pricer picks the most specific term in force at a call's time. Adding a
term never changes costs already stored: that is what ``manage.py reprice`` is for.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from billing.operator.models import TenantPriceOverride
from factory_portal.periods import zone
from factory_portal.tenants.models import Tenant

PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")


def price_override_create(
    *,
    tenant: Tenant,
    provider: str = "",
    model: str = "",
    discount_percent: Decimal | None = None,
    input_per_mtok: Decimal | None = None,
    output_per_mtok: Decimal | None = None,
    cache_read_per_mtok: Decimal | None = None,
    cache_write_per_mtok: Decimal | None = None,
    effective_from: datetime | None = None,
    note: str = "",
) -> TenantPriceOverride:
    """Add a contract term from ``effective_from`` (default: now). Raises ValidationError keyed by
    field when the term is not exactly one of "a discount from 0 to 100 %" or "custom input and
    output prices (cache prices optional, falling back to the input price)"."""
    if tenant.is_public:
        raise ValidationError({"tenant": "Contract terms belong to a customer tenant."})
    prices = {
        "input_per_mtok": input_per_mtok,
        "output_per_mtok": output_per_mtok,
        "cache_read_per_mtok": cache_read_per_mtok,
        "cache_write_per_mtok": cache_write_per_mtok,
    }
    given = [name for name, price in prices.items() if price is not None]
    errors: dict[str, str] = {}
    if discount_percent is None and not given:
        errors["__all__"] = "Give either a discount or custom prices (input and output)."
    elif discount_percent is not None and given:
        errors["__all__"] = "A term is a discount or custom prices, not both."
    elif discount_percent is not None and not Decimal(0) <= discount_percent <= Decimal(100):
        errors["discount_percent"] = "A discount is a percentage from 0 to 100."
    elif given and (input_per_mtok is None or output_per_mtok is None):
        missing = "input_per_mtok" if input_per_mtok is None else "output_per_mtok"
        errors[missing] = "Custom prices need both an input and an output price."
    errors.update({name: "A price cannot be negative." for name in given if prices[name] < 0})
    if errors:
        raise ValidationError(errors)
    override = TenantPriceOverride(
        tenant=tenant,
        provider=provider.strip(),
        model=model.strip(),
        discount_percent=discount_percent,
        effective_from=effective_from or timezone.now(),
        note=note.strip()[:200],
        **prices,
    )
    override.full_clean()  # digits and decimal places fit the columns
    override.save()
    return override


def term_start_text(override: TenantPriceOverride) -> str:
    """When a term starts, in its tenant's time zone (a day given for it starts at the tenant's
    midnight): ``2026-10-01 00:00 Asia/Tokyo``."""
    tz = zone(override.tenant.timezone)
    return f"{override.effective_from.astimezone(tz):%Y-%m-%d %H:%M} {tz.key}"
