"""The tenant admin's workspace settings page: the tenant's name and host, and its time zone (where
its days and months begin), set through ``factory_portal.tenants.services``."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from factory_portal.accounts.permissions import role_required
from factory_portal.money import NUMBER_FORMATS
from factory_portal.tenants.connection import connection_tenant
from factory_portal.tenants.forms import TenantNumberFormatForm, TenantTimezoneForm
from factory_portal.tenants.services import tenant_number_format_set, tenant_timezone_set


@role_required("admin")
def workspace_settings(request: HttpRequest) -> HttpResponse:
    """The workspace's time zone and number format, each its own form (``?form=`` says which
    was sent)."""
    tenant = connection_tenant()
    posted = request.POST if request.method == "POST" else None
    which = request.POST.get("form", "timezone") if posted is not None else ""
    form = TenantTimezoneForm(
        posted if which == "timezone" else None, initial={"timezone": tenant.timezone}
    )
    number_form = TenantNumberFormatForm(
        posted if which == "number_format" else None,
        initial={"number_format": tenant.number_format},
    )
    status = 200
    if which == "timezone":
        if form.is_valid():
            try:
                tenant_timezone_set(tenant=tenant, timezone=form.cleaned_data["timezone"])
            except ValidationError as exc:
                form.add_error("timezone", exc)
            else:
                messages.success(request, f"Time zone set to {tenant.timezone}.")
                return redirect("workspace-settings")
        status = 400
    elif which == "number_format":
        if number_form.is_valid():
            chosen = number_form.cleaned_data["number_format"]
            tenant_number_format_set(tenant=tenant, number_format=chosen)
            messages.success(request, f"Numbers are now written {NUMBER_FORMATS[chosen].label}.")
            return redirect("workspace-settings")
        status = 400
    elif posted is not None:
        messages.error(request, "Nothing was changed: the form sent is not one of this page's.")
        status = 400
    return render(
        request,
        "tenants/workspace_settings.html",
        {"tenant": tenant, "form": form, "number_form": number_form, "host": request.get_host()},
        status=status,
    )
