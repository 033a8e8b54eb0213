"""Whether a tenant has sent anything yet: a usage event, a run or a traced call. Three EXISTS
queries on the current tenant's schema, for the onboarding checklist; no counts, no figures."""

from __future__ import annotations

from usage.models import InfraUsageEvent, LlmUsageEvent, Run


def anything_received() -> bool:
    """True once any LLM or infrastructure usage event or any run (from the API or a span) is
    stored."""
    return (
        Run.objects.exists() or LlmUsageEvent.objects.exists() or InfraUsageEvent.objects.exists()
    )
