"""How ingestion prices LLM calls without ``usage`` depending on ``billing``.

``usage`` defines what it needs (a ``Pricer``); ``billing`` provides it, named by the
``USAGE_PRICER`` setting (dependency inversion keeps the one-way rule: billing reads usage).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class PricedCall(NamedTuple):
    cost: Decimal  # USD, 10 decimal places
    price_ref: int | None  # price book entry id
    override_ref: int | None  # tenant contract override id


class Pricer(Protocol):
    def price(
        self,
        *,
        provider: str,
        model: str,
        at: datetime,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int,
        cache_write_tokens: int,
    ) -> PricedCall | None:
        """The call's cost, or None when it cannot be priced (stored as unpriced)."""
        ...


def pricer_for(tenant: Any) -> Pricer:
    return import_string(settings.USAGE_PRICER)(tenant)
