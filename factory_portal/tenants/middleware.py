"""Refuses requests to suspended tenants (the operator can suspend a customer), and shows a
tenant's pages in its time zone."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import timezone

from factory_portal.periods import zone
from factory_portal.tenants.models import Tenant


class TenantStatusMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant = getattr(connection, "tenant", None)
        if isinstance(tenant, Tenant) and tenant.status == Tenant.Status.SUSPENDED:
            detail = f"The account {tenant.name} is suspended. Contact the platform operator."
            if request.path.startswith(("/api/", "/v1/")):
                return JsonResponse(
                    {"title": "Tenant suspended", "status": 403, "detail": detail},
                    status=403,
                    content_type="application/problem+json",
                )
            html = render_to_string("suspended.html", {"detail": detail}, request=request)
            return HttpResponse(html, status=403)
        if not isinstance(tenant, Tenant) or tenant.schema_name == "public":
            return self.get_response(request)
        # Times on the tenant's pages are its local times (labelled with the zone's name), as
        # its days and months are; the API keeps answering in UTC (ISO 8601 with Z).
        with timezone.override(zone(tenant.timezone)):
            return self.get_response(request)
