"""Alert settings pages: rules and e-mail (admin), webhooks with their delivery log and a test
button (admin), and each user's own run alerts (everyone)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from alerts import selectors
from alerts.forms import AlertSettingsForm, RunSubscriptionForm, WebhookEndpointForm
from alerts.models import WebhookEndpoint
from alerts.services import settings as services
from factory_portal.accounts.permissions import role_required
from usage.selectors import project_slugs


@role_required("admin")
def alert_settings(request: HttpRequest) -> HttpResponse:
    form = AlertSettingsForm(request.POST or None, instance=services.alert_settings_for_update())
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, "Alert rules saved.")
            return redirect("alert-settings")
        status = 400
    else:
        status = 200
    return render(
        request,
        "alerts/settings.html",
        {"form": form, "alerts": selectors.recent_alerts()},
        status=status,
    )


@role_required("signed_in")
def run_alerts(request: HttpRequest) -> HttpResponse:
    subscription = services.run_subscription_for(request.user)
    form = RunSubscriptionForm(request.POST or None, instance=subscription)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, "Your run alerts are saved.")
            return redirect("run-alerts")
        status = 400
    return render(
        request,
        "alerts/run_alerts.html",
        {"form": form, "projects": project_slugs()},
        status=status,
    )


@role_required("admin")
def webhooks(request: HttpRequest) -> HttpResponse:
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            endpoint = services.webhook_create(**form.cleaned_data)
            messages.success(
                request, f"Webhook {endpoint.name} added; its signing secret is below."
            )
            return redirect("webhook-detail", pk=endpoint.pk)
        return render(
            request,
            "alerts/webhooks.html",
            {"form": form, "endpoints": selectors.webhook_endpoints()},
            status=400,
        )
    return render(
        request, "alerts/webhooks.html", {"form": form, "endpoints": selectors.webhook_endpoints()}
    )


@role_required("admin")
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    return render(
        request,
        "alerts/webhook_detail.html",
        {
            "endpoint": endpoint,
            "log": selectors.delivery_log(endpoint, request.GET.get("page", 1)),
        },
    )


@role_required("admin")
@require_POST
def webhook_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    if not endpoint.enabled:
        messages.error(request, "Enable the endpoint before sending a test.")
    else:
        services.webhook_test_send(endpoint=endpoint)
        messages.success(request, "Test alert queued; its delivery appears in the log below.")
    return redirect("webhook-detail", pk=pk)


@role_required("admin")
@require_POST
def webhook_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    endpoint.enabled = not endpoint.enabled
    endpoint.save(update_fields=["enabled"])
    messages.success(request, f"{endpoint.name} {'enabled' if endpoint.enabled else 'disabled'}.")
    return redirect("webhook-detail", pk=pk)


@role_required("admin")
@require_POST
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    endpoint.delete()
    messages.success(request, f"Webhook {endpoint.name} deleted with its delivery log.")
    return redirect("webhooks")
