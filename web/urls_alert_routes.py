"""The paths of the alerts pages and of the alert routes pages: the same on a tenant's site and
on the operator console (each host passes its own views; the URL names are shared, so the
templates serve both)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, path

from alerts.oncall.views_routes import RouteViews

View = Callable[..., Any]


def alert_urls(
    *, alerts: View, incident: View, ack: View, silences: View, silence_end: View
) -> list[URLPattern]:
    return [
        path("alerts/", alerts, name="alerts"),
        path("alerts/<int:pk>/", incident, name="incident"),
        path("alerts/<int:pk>/ack/", ack, name="incident-ack"),
        path("alerts/silences/", silences, name="silences"),
        path("alerts/silences/<int:pk>/expire/", silence_end, name="silence-expire"),
    ]


def alert_route_urls(prefix: str, views: RouteViews) -> list[URLPattern]:
    return [
        path(prefix, views.routes, name="alert-routes"),
        path(f"{prefix}<int:pk>/", views.detail, name="alert-route"),
        path(f"{prefix}<int:pk>/test", views.test, name="alert-route-test"),
        path(f"{prefix}<int:pk>/toggle", views.toggle, name="alert-route-toggle"),
        path(f"{prefix}<int:pk>/delete", views.delete, name="alert-route-delete"),
    ]
