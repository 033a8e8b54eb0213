"""Reads of the OTLP trace routing tables (public schema): the backlog of spans waiting for
their run span."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min

from usage.trace_routing.models import PendingSpan


@dataclass(frozen=True)
class SpanBacklog:
    spans: int
    traces: int
    oldest: datetime | None
    senders: tuple[tuple[str, int], ...] = ()  # the five largest: (tenant slug or "platform", n)
    limit_per_sender: int = 0
    ttl_seconds: int = 0


def span_backlog() -> SpanBacklog:
    """OTLP spans stored while their run is unknown (usually its run span comes later), the
    senders with the most of them, and the bounds: per sender, and how long they wait."""
    row = PendingSpan.objects.aggregate(
        spans=Count("id"), traces=Count("trace_id", distinct=True), oldest=Min("received_at")
    )
    senders = PendingSpan.objects.values("tenant_hint").annotate(n=Count("id")).order_by("-n")[:5]
    return SpanBacklog(
        spans=row["spans"],
        traces=row["traces"],
        oldest=row["oldest"],
        senders=tuple((s["tenant_hint"] or "platform", s["n"]) for s in senders),
        limit_per_sender=settings.OTLP_MAX_PARKED_SPANS,
        ttl_seconds=settings.OTLP_PARKED_SPAN_TTL_SECONDS,
    )
