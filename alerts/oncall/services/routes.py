"""Writes of the alert routes pages: add, enable or disable, delete a route.

Secrets (a PagerDuty integration key, a Slack or Teams webhook URL) are stored like webhook
secrets, in the schema's own table; pages show them masked (``selectors_routes``)."""

from __future__ import annotations

from django.db import transaction

from alerts.oncall.models import Route, Severity


def route_create(
    *, name: str, channel: str, severities: list[str], target: str, routing_key: str
) -> Route:
    """A validated route (``forms_routes.RouteForm`` checks the target and key per channel)."""
    if channel not in Route.Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    wanted = [s for s in Severity.values if s in set(severities)]  # catalogue order, once each
    if not wanted:
        raise ValueError("a route takes at least one severity")
    return Route.objects.create(
        name=name.strip()[:100],
        channel=channel,
        severities=wanted,
        target=target,
        routing_key=routing_key,
    )


def route_enabled_set(route: Route, *, enabled: bool) -> Route:
    route.enabled = enabled
    route.save(update_fields=["enabled"])
    return route


def route_delete(route: Route) -> None:
    """The route goes with its delivery log (pending pages to it are never sent)."""
    with transaction.atomic():
        route.delete()
