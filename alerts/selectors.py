"""Read paths of the alert pages and API."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import Count, Max, Q

from alerts.models import Alert, Delivery, WebhookEndpoint


def recent_alerts(limit: int = 20) -> list[Alert]:
    return list(Alert.objects.exclude(kind=Alert.Kind.TEST).order_by("-created_at", "-pk")[:limit])


def webhook_endpoints() -> list[WebhookEndpoint]:
    """Endpoints with their delivery counts (one query)."""
    return list(
        WebhookEndpoint.objects.annotate(
            sent=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.SENT)),
            pending=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING)),
            failed=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.FAILED)),
            last_delivery=Max("deliveries__created_at"),
        ).order_by("name", "pk")
    )


def delivery_log(endpoint: WebhookEndpoint, page: int, per_page: int = 50) -> Page:
    rows = (
        Delivery.objects.filter(endpoint=endpoint)
        .select_related("alert")
        .order_by("-created_at", "-pk")
    )
    return Paginator(rows, per_page).get_page(page)
