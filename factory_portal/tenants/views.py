"""The tenant admin's workspace settings page: the tenant's name and host, and its time zone (where
its days and months begin), set through ``factory_portal.tenants.services``."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from factory_portal.accounts.permissions import role_required
from factory_portal.tenants.connection import connection_tenant
from factory_portal.tenants.forms import TenantTimezoneForm
from factory_portal.tenants.services import tenant_timezone_set


@role_required("admin")
def workspace_settings(request: HttpRequest) -> HttpResponse:
    tenant = connection_tenant()
    form = TenantTimezoneForm(request.POST or None, initial={"timezone": tenant.timezone})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                tenant_timezone_set(tenant=tenant, timezone=form.cleaned_data["timezone"])
            except ValidationError as exc:
                form.add_error("timezone", exc)
            else:
                messages.success(request, f"Time zone set to {tenant.timezone}.")
                return redirect("workspace-settings")
        status = 400
    return render(
        request,
        "tenants/workspace_settings.html",
        {"tenant": tenant, "form": form, "host": request.get_host()},
        status=status,
    )
