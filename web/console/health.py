"""The operator's system health: database, Celery broker (queue depth, workers), the backlog of
OTLP spans waiting for their run, and how fresh each tenant's usage is. The probes are bounded
and failure-safe (``factory_portal.observability.probes``), so the page always renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from factory_portal.observability.probes import (
    BrokerHealth,
    DatabaseHealth,
    broker_health,
    database_health,
)
from factory_portal.tenants.selectors import customer_tenants
from usage.trace_routing.selectors import SpanBacklog, span_backlog
from web.console.selectors import TenantFreshness, tenant_freshness


@dataclass(frozen=True)
class SystemHealth:
    database: DatabaseHealth
    broker: BrokerHealth
    pending_spans: SpanBacklog
    tenants: list[TenantFreshness]  # the stalest HEALTH_TENANTS_SHOWN
    tenants_total: int = 0

    @property
    def stale_tenants(self) -> int:
        return sum(t.stale for t in self.tenants)


def system_health(*, now: datetime, ping_workers: bool = True) -> SystemHealth:
    return SystemHealth(
        database=database_health(),
        broker=broker_health(ping_workers=ping_workers),
        pending_spans=span_backlog(),
        tenants=tenant_freshness(now=now),
        tenants_total=customer_tenants().count(),
    )
