"""How ingestion prices LLM calls without ``usage`` depending on ``billing``.

``usage`` defines what it needs (a ``Pricer``); ``billing`` provides it, named by the
``USAGE_PRICER`` setting (dependency inversion keeps the one-way rule: billing reads usage).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class PricedCall(Protocol):
    """What pricing answers for one call (billing's ``CallCost`` is one, answered as it is: a
    copy per call cost a batch of 5,000 a millisecond or two)."""

    @property
    def cost(self) -> Decimal: ...  # USD, 10 decimal places
    @property
    def price_ref(self) -> int | None: ...  # price book entry id
    @property
    def override_ref(self) -> int | None: ...  # tenant contract override id


class LlmCall(Protocol):
    """What pricing reads of one LLM call: an incoming event and a stored one alike."""

    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cached_input_tokens(self) -> int: ...
    @property
    def cache_write_tokens(self) -> int: ...


class Pricer(Protocol):
    def price(self, call: LlmCall) -> PricedCall | None:
        """The call's cost, or None when it cannot be priced (stored as unpriced)."""
        ...

    def price_all(self, calls: Iterable[LlmCall]) -> list[PricedCall | None]:
        """``price`` of each call, in order (a batch at a time is cheaper)."""
        ...


def pricer_for(tenant: Any) -> Pricer:
    return import_string(settings.USAGE_PRICER)(tenant)
