"""Alert routes pages: the list with an add form, a route with its delivery log, enable or
disable, delete and "Send test". Tenant admins manage their tenant's routes under
``/settings/alert-routes/``; the operator manages the platform's (public schema) under
``/alerts/routes/``, with the same views and templates."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from alerts.oncall import selectors_routes as selectors
from alerts.oncall.forms_routes import RouteForm
from alerts.oncall.models import Route
from alerts.oncall.services import routes as services
from alerts.oncall.services.send import route_recipients, route_test_send
from factory_portal.accounts.permissions import View, role_required


def _admins() -> str:
    """Who a blank e-mail route writes to, in this schema's words."""
    return "the operators" if connection.schema_name == "public" else "the admins"


def _routes(request: HttpRequest) -> HttpResponse:
    form = RouteForm(request.POST or None, admins=_admins())
    status = 200
    if request.method == "POST":
        if form.is_valid():
            route = services.route_create(**form.cleaned_data)
            messages.success(request, f"Route {route.name} added.")
            return redirect("alert-route", pk=route.pk)
        status = 400
    context = {"form": form, "rows": selectors.route_rows(admins=_admins()), "admins": _admins()}
    return render(request, "oncall/routes.html", context, status=status)


def _route_detail(request: HttpRequest, pk: int) -> HttpResponse:
    route = get_object_or_404(Route, pk=pk)
    context = {
        "route": route,
        "destination": selectors.route_destination(route, admins=_admins()),
        "log": selectors.route_log(route, request.GET.get("page", 1)),
    }
    return render(request, "oncall/route_detail.html", context)


def _route_test(request: HttpRequest, pk: int) -> HttpResponse:
    route = get_object_or_404(Route, pk=pk)
    if not route.enabled:
        messages.error(request, "Enable the route before sending a test.")
        return redirect("alert-route", pk=pk)
    attempt = route_test_send(route)
    answer = f"HTTP {attempt.status_code}" if attempt.status_code else ""
    took = f" in {attempt.response_ms} ms" if attempt.response_ms is not None else ""
    if attempt.error:
        messages.error(request, f"The test to {route.name} failed: {attempt.error}{took}.")
    elif route.channel == Route.Channel.EMAIL:
        to = ", ".join(route_recipients(route))
        messages.success(request, f"Test e-mailed to {to}{took}.")
    else:
        messages.success(request, f"Test sent to {route.name}: {answer}{took}.")
    return redirect("alert-route", pk=pk)


def _route_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    route = get_object_or_404(Route, pk=pk)
    route = services.route_enabled_set(route, enabled=not route.enabled)
    messages.success(request, f"{route.name} {'enabled' if route.enabled else 'disabled'}.")
    return redirect("alert-route", pk=pk)


def _route_delete(request: HttpRequest, pk: int) -> HttpResponse:
    route = get_object_or_404(Route, pk=pk)
    name = route.name
    services.route_delete(route)
    messages.success(request, f"Route {name} deleted with its delivery log.")
    return redirect("alert-routes")


@dataclass(frozen=True)
class RouteViews:
    """The five views of one audience (``web.urls_alert_routes`` gives them their paths)."""

    routes: View
    detail: View
    test: View
    toggle: View
    delete: View


def _guarded(area: str) -> RouteViews:
    allowed = role_required(area)
    return RouteViews(
        routes=allowed(_routes),
        detail=allowed(_route_detail),
        test=allowed(require_POST(_route_test)),
        toggle=allowed(require_POST(_route_toggle)),
        delete=allowed(require_POST(_route_delete)),
    )


FOR_ADMINS = _guarded("admin")  # a tenant's routes (web.urls_tenants)
FOR_OPERATOR = _guarded("operator")  # the platform's routes (web.urls_public)
