"""The routes' outbox: which routes an incident event goes to, written as ``Page`` rows in the
transaction that moved the incident, and handed to Celery after it commits (a broker that is
down loses nothing: the beat sweeper sends pending rows). Sending is ``services.send``."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction

from alerts.oncall.models import Incident, Page, Route
from factory_portal.broker import enqueue


def routes_for(incident: Incident, event: str) -> list[Route]:
    """A trigger goes to every enabled route that takes the incident's severity; an acknowledge
    to the PagerDuty routes that got the trigger; a resolve to every route that got the trigger
    (a route added since gets no stray resolve), disabled since or not: disabling a route stops
    new pages, and an incident it paged still resolves there (a review found a PagerDuty
    incident left open for good)."""
    if event == Page.Event.TRIGGER:
        return [
            r
            for r in Route.objects.filter(enabled=True).order_by("pk")
            if incident.severity in (r.severities or [])
        ]
    triggered = Route.objects.filter(
        pages__incident=incident, pages__event=Page.Event.TRIGGER
    ).distinct()
    if event == Page.Event.ACKNOWLEDGE:
        triggered = triggered.filter(channel=Route.Channel.PAGERDUTY)
    return list(triggered.order_by("pk"))


def pages_create(incident: Incident, event: str) -> list[Page]:
    """The outbox rows of one incident event (each route once: an event written again adds
    nothing), enqueued after commit. Call inside the transaction that changed the incident."""
    if event not in Page.Event.values:
        raise ValueError(f"unknown incident event {event!r}")
    done = set(
        Page.objects.filter(incident=incident, event=event).values_list("route_id", flat=True)
    )
    rows = Page.objects.bulk_create(
        Page(incident=incident, route=route, event=event)
        for route in routes_for(incident, event)
        if route.pk not in done
    )
    ids = [p.pk for p in rows]
    schema = connection.schema_name
    if ids:
        transaction.on_commit(lambda: pages_enqueue(ids, schema=schema))
    return rows


def pages_enqueue(ids: Iterable[int], *, schema: str) -> int:
    """Hand pages to Celery in ``schema``; stops at the first refusal (broker down: the sweeper
    sends them). Returns how many were enqueued."""
    from alerts.oncall.tasks import page_send_task

    enqueued = 0
    for page_id in ids:
        if not enqueue(page_send_task, schema=schema, args=[page_id]):
            break
        enqueued += 1
    return enqueued
