"""The paths of the alert routes pages, the same below a tenant's and the operator's prefix."""

from __future__ import annotations

from django.urls import URLPattern, path

from alerts.oncall.views_routes import RouteViews


def alert_route_urls(prefix: str, views: RouteViews) -> list[URLPattern]:
    return [
        path(prefix, views.routes, name="alert-routes"),
        path(f"{prefix}<int:pk>/", views.detail, name="alert-route"),
        path(f"{prefix}<int:pk>/test", views.test, name="alert-route-test"),
        path(f"{prefix}<int:pk>/toggle", views.toggle, name="alert-route-toggle"),
        path(f"{prefix}<int:pk>/delete", views.delete, name="alert-route-delete"),
    ]
