"""Which models a tenant has used: the (provider, model) pairs of its LLM calls, read from the
daily rollups (one small DISTINCT, never the events). For the operator's "models in use" filter of
the price book; knows nothing of prices."""

from __future__ import annotations

from usage.models import LlmUsageDaily


def models_seen() -> set[tuple[str, str]]:
    """Every (provider, model) with at least one LLM call in the current tenant's schema."""
    return set(LlmUsageDaily.objects.values_list("provider", "model").distinct())
