"""The ingest entry point: what the API views call to store events, run updates and OTLP spans.

Each path is routed to its tenants (``usage.services.routing``: a tenant's key writes to its own
tenant, the platform key's items name theirs), stored in one transaction, and retried on
deadlocks and serialization conflicts, the same way for all three. Parsing stays with the views
(``usage.domain``); what each kind of item becomes is the work of ``usage.services.ingest``,
``runs`` and ``otlp``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from factory_portal.observability import metrics
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import tenants_beyond_one_request
from usage.domain.events import FieldError
from usage.domain.otlp import SpanRecord
from usage.pricing import pricer_for
from usage.services.activity import tenant_activity_record
from usage.services.ingest import IngestResult, events_ingest
from usage.services.otlp import TracesResult, spans_route_and_store
from usage.services.routing import ingest_transaction, per_tenant, tenants_by_slug
from usage.services.runs import runs_ingest


def _events_store(tenant: Tenant, items: list[Any]) -> IngestResult:
    return events_ingest(events=items, pricer=pricer_for(tenant))


def _runs_store(tenant: Tenant, items: list[Any]) -> IngestResult:
    return runs_ingest(updates=items)


# What a batch of each endpoint is stored with, in the current tenant's schema.
BATCH_STORES: dict[str, Callable[[Tenant, list[Any]], IngestResult]] = {
    "events": _events_store,
    "runs": _runs_store,
}


@dataclass(frozen=True)
class BatchOutcome:
    """Every invalid item (then nothing was stored), or what was stored and the events refused
    for being older than their tenant keeps raw events (``expired``; the others were stored)."""

    errors: list[FieldError] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    expired: list[FieldError] = field(default_factory=list)


def _retained(tenant: Tenant, items: list[Any], expired: list[FieldError]) -> list[Any]:
    """The events of ``tenant`` it still keeps raw rows for; the others go to ``expired``."""
    kept_from = tenant.raw_retained_from
    if kept_from is None:
        return items
    kept = []
    for item in items:
        if item.occurred_at < kept_from:
            expired.append(
                FieldError(
                    item.position,
                    "timestamp",
                    f"is before {kept_from.isoformat()}, where the tenant's raw usage events"
                    " begin (older months are past retention); not stored",
                )
            )
        else:
            kept.append(item)
    return kept


def batch_ingest(
    *,
    kind: str,
    items: Sequence[Any],
    errors: Sequence[FieldError],
    host_tenant: Tenant | None,
) -> BatchOutcome:
    """Store a parsed batch of ``kind`` ("events" or "runs") all or nothing. ``errors`` are the
    items the parser refused; with the platform key (``host_tenant`` None) items naming an
    unknown or inactive tenant are refused too. Any error: nothing is stored."""
    errors = list(errors)
    groups: dict[Tenant, list[Any]] = defaultdict(list)
    if host_tenant is None:
        tenants = tenants_by_slug(i.tenant for i in items)
        beyond, reason = tenants_beyond_one_request(tenants)
        said: set[str] = set()  # once per tenant, at its first item
        for item in items:
            if item.tenant in beyond:
                if item.tenant not in said:
                    said.add(item.tenant)
                    errors.append(FieldError(item.position, "tenant", reason))
            elif item.tenant in tenants:
                groups[tenants[item.tenant]].append(item)
            else:
                errors.append(
                    FieldError(
                        item.position, "tenant", f"unknown or inactive tenant {item.tenant!r}"
                    )
                )
    else:
        groups[host_tenant] = list(items)
    if errors:
        return BatchOutcome(errors=sorted(errors, key=lambda e: e.index))
    expired: list[FieldError] = []
    if kind == "events":
        groups = {t: kept for t, i in groups.items() if (kept := _retained(t, i, expired))}
    store = BATCH_STORES[kind]

    def counted(tenant: Tenant, tenant_items: list[Any]) -> IngestResult:
        result = store(tenant, tenant_items)
        tenant_activity_record(tenant)

        def count() -> None:
            metrics.INGEST_EVENTS.labels(kind, tenant.slug, "accepted").inc(result.accepted)
            metrics.INGEST_EVENTS.labels(kind, tenant.slug, "duplicate").inc(result.duplicates)

        transaction.on_commit(lambda: metrics.guarded(count))  # a rolled-back batch counts nothing
        return result

    results = ingest_transaction(lambda: per_tenant(groups, counted)) if groups else []
    return BatchOutcome(
        accepted=sum(r.accepted for r in results),
        duplicates=sum(r.duplicates for r in results),
        expired=sorted(expired, key=lambda e: e.index),
    )


def traces_ingest(*, records: Sequence[SpanRecord], host_tenant: Tenant | None) -> TracesResult:
    """Store mapped spans; ``host_tenant`` is the tenant whose key sent them (None: the platform
    key, where each span names its tenant, or its trace's route does)."""
    return ingest_transaction(
        lambda: spans_route_and_store(records=list(records), host_tenant=host_tenant)
    )
