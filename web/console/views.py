"""Operator console pages (public schema): the tenant list with creating, suspending and
reactivating tenants (through ``factory_portal.tenants.services``), and the system health page."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from factory_portal.money import quantize_cents
from factory_portal.pagination import numbered_page
from factory_portal.tenants.access import operator_required
from factory_portal.tenants.forms import (
    TenantCreateForm,
    TenantRetentionForm,
    TenantStatusForm,
)
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import tenant_by_slug
from factory_portal.tenants.services import (
    tenant_create,
    tenant_domain,
    tenant_raw_retention_set,
    tenant_set_status,
)
from web.console.health import system_health
from web.console.selectors import (
    CONSOLE_PAGE_SIZE,
    RetentionMonth,
    tenant_retention_months,
    tenant_summaries,
    tenants_search,
)


def _console(request: HttpRequest, form: TenantCreateForm, status: int = 200) -> HttpResponse:
    """The tenant list, ``CONSOLE_PAGE_SIZE`` a page (``?page=``), filtered by ``?q=`` (slug or
    name); a page that is not a number or past the last answers 400 with the first page."""
    query = request.GET.get("q", "").replace("\x00", "")[:100]  # PostgreSQL refuses NUL
    page, page_error = numbered_page(
        tenants_search(query), CONSOLE_PAGE_SIZE, request.GET.get("page", "1")
    )
    if page_error:
        status = 400
    summaries = tenant_summaries(now=timezone.now(), tenants=page.object_list)
    return render(
        request,
        "tenants/console.html",
        {
            "summaries": summaries,
            "page": page,
            "query": query,
            "page_error": page_error,
            # The rows as shown (each to the cent) add up to the total shown.
            "total_cost": sum((quantize_cents(s.month_cost) for s in summaries), Decimal(0)),
            "form": form,
        },
        status=status,
    )


DEFAULT_PORTS = {"http": "80", "https": "443"}


def tenant_site_url(request: HttpRequest, host: str) -> str:
    """The tenant's site as an absolute link from the operator's page: the scheme and port the
    operator reached the console with (the port left out when it is the scheme's default)."""
    port = request.get_port()
    suffix = "" if port == DEFAULT_PORTS.get(request.scheme) else f":{port}"
    return f"{request.scheme}://{host}{suffix}/"


@operator_required
def console(request: HttpRequest) -> HttpResponse:
    return _console(request, TenantCreateForm())


@never_cache  # the page shows the admin's password, once
@operator_required
@require_POST
def tenant_add(request: HttpRequest) -> HttpResponse:
    form = TenantCreateForm(request.POST)
    if form.is_valid():
        try:
            created = tenant_create(**form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            host = tenant_domain(created.tenant.slug)
            # Rendered, not redirected: the password must not travel through a stored message.
            return render(
                request,
                "tenants/tenant_created.html",
                {"created": created, "host": host, "site_url": tenant_site_url(request, host)},
            )
    return _console(request, form, status=400)


@operator_required
@require_POST
def tenant_status(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = tenant_by_slug(slug)
    if tenant is None:
        raise Http404("No such tenant")
    form = TenantStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown tenant status.")
        return redirect("home")
    tenant_set_status(tenant=tenant, status=form.cleaned_data["status"])
    if tenant.status == Tenant.Status.SUSPENDED:
        messages.warning(request, f"{tenant.name} is suspended: its site and API now answer 403.")
    else:
        messages.success(request, f"{tenant.name} is active again.")
    return redirect("home")


@never_cache
@operator_required
def health(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    return render(request, "operator/health.html", {"health": system_health(now=now), "now": now})


@never_cache
@operator_required
def tenant_retention(request: HttpRequest, slug: str) -> HttpResponse:
    """A tenant's raw event partitions (month, estimated rows, size) and its retention."""
    tenant = tenant_by_slug(slug)
    if tenant is None or tenant.is_public:
        raise Http404("No such tenant")
    form = TenantRetentionForm(
        request.POST if request.method == "POST" else None,
        initial={"raw_retention_months": tenant.raw_retention_months},
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            months = form.cleaned_data["raw_retention_months"]
            try:
                tenant_raw_retention_set(tenant=tenant, months=months)
            except ValidationError as exc:
                form.add_error("raw_retention_months", exc)
            else:
                dropped = [
                    m for m in tenant_retention_months(tenant, now=timezone.now()) if m.dropped
                ]
                messages.success(
                    request,
                    f"{tenant.name} keeps {months} months of raw usage events from the next"
                    " partition maintenance on"
                    + (f"; it drops {_months_named(dropped)}." if dropped else "."),
                )
                return redirect("tenant-retention", slug=slug)
        status = 400
    months = tenant_retention_months(tenant, now=timezone.now())
    rows = [m.rows_estimate for m in months]
    dropped = [m for m in months if m.dropped]
    return render(
        request,
        "operator/retention.html",
        {
            "tenant": tenant,
            "form": form,
            "months": months,
            "total_bytes": sum(m.size_bytes for m in months),
            "total_rows": None if None in rows else sum(r or 0 for r in rows),
            "dropped": _months_named(dropped) if dropped else "",
        },
        status=status,
    )


def _months_named(months: list[RetentionMonth]) -> str:
    """``2026-09 to 2026-10 (47.4 MB)``: the span of ``months`` (newest first) and their size."""
    span = f"{months[-1].month:%Y-%m}"
    if len(months) > 1:
        span += f" to {months[0].month:%Y-%m}"
    return f"{span} ({filesizeformat(sum(m.size_bytes for m in months))})"
