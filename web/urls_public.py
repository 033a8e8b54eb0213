"""URLs of the bare base domain: the operator console."""

from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from alerts.oncall import views as oncall_views
from alerts.oncall import views_routes as route_views
from alerts.oncall import views_rules as runtime_rule_views
from billing.operator import views as billing_views
from billing.operator.api import RuleDetailApi, RuleListApi
from billing.operator.billed_api import BilledDriftApi, BilledImportApi, BilledTrueUpApi
from factory_portal.accounts.api import WhoAmIApi
from factory_portal.accounts.views import LoginView, LogoutView
from runtime import views as runtime_views
from runtime.api import MetricsApi
from usage.api import EventIngestApi, RunIngestApi, TracesApi
from usage.api_logs import LogsApi
from web.console import views as tenant_views
from web.urls_alert_routes import alert_route_urls, alert_urls

# The operator host's API has its own OpenAPI schema (this urlconf's API views only).
OPERATOR_SCHEMA_SETTINGS = {
    "TITLE": "Factory Portal operator API",
    "DESCRIPTION": "The operator host (the bare base domain): allocation rules and billed vs"
    " estimated AI cost, for an operator's browser session only; and platform ingest"
    " (`/api/v1/events`, `/api/v1/runs`, `/v1/traces`, `/v1/metrics`, `/v1/logs`) with the"
    " platform key (`Authorization: Bearer <key>`, scope `ingest`), every item naming its tenant.",
}

urlpatterns = [
    path("favicon.ico", RedirectView.as_view(url=static("img/favicon.svg"), permanent=True)),
    path("", tenant_views.console, name="home"),
    path("tenants/new", tenant_views.tenant_add, name="tenant-add"),
    path("tenants/<str:slug>/status", tenant_views.tenant_status, name="tenant-status"),
    path("tenants/<str:slug>/retention/", tenant_views.tenant_retention, name="tenant-retention"),
    path(
        "tenants/<str:slug>/commitments/",
        billing_views.tenant_commitments,
        name="tenant-commitments",
    ),
    path(
        "tenants/<str:slug>/commitments/<int:pk>/",
        billing_views.tenant_commitment_edit,
        name="tenant-commitment-edit",
    ),
    path(
        "tenants/<str:slug>/commitments/<int:pk>/end",
        billing_views.tenant_commitment_end,
        name="tenant-commitment-end",
    ),
    path("customer-costs/", billing_views.customer_costs, name="customer-costs"),
    path("customer-costs.csv", billing_views.customer_costs_csv, name="customer-costs-csv"),
    path("price-book/", billing_views.price_book, name="price-book"),
    path("price-book/overrides", billing_views.price_override_add, name="price-override-add"),
    path("price-book/refresh", billing_views.price_book_refresh, name="price-book-refresh"),
    path("pools/", billing_views.pools, name="pools"),
    path("pools/upload", billing_views.pools_upload, name="pools-upload"),
    path("billed/", billing_views.billed, name="billed"),
    path("billed/upload", billing_views.billed_upload, name="billed-upload"),
    path("billed/<str:period>/", billing_views.billed_month, name="billed-month"),
    path("billed/<str:period>/true-up", billing_views.billed_month_trueup, name="billed-trueup"),
    path("health/", tenant_views.health, name="health"),
    *alert_route_urls("alerts/routes/", route_views.FOR_OPERATOR),
    path("health/factory/", runtime_views.operator_factory_health, name="factory-health"),
    path("health/queues/", runtime_views.operator_queues, name="queues"),
    *alert_urls(
        alerts=oncall_views.operator_alerts,
        incident=oncall_views.operator_incident,
        ack=oncall_views.operator_incident_ack,
        silences=oncall_views.operator_silences,
        silence_end=oncall_views.operator_silence_end_now,
    ),
    path("alerts/rules/", runtime_rule_views.operator_rules, name="runtime-rules"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(
            urlconf="web.urls_public", custom_settings=OPERATOR_SCHEMA_SETTINGS
        ),
        name="api-schema",
    ),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/whoami", WhoAmIApi.as_view(), name="api-whoami"),
    path("api/v1/allocation-rules", RuleListApi.as_view(), name="api-allocation-rules"),
    path("api/v1/allocation-rules/<int:pk>", RuleDetailApi.as_view(), name="api-allocation-rule"),
    path("api/v1/billed-imports", BilledImportApi.as_view(), name="api-billed-imports"),
    path("api/v1/billed-drift/<str:period>", BilledDriftApi.as_view(), name="api-billed-drift"),
    path(
        "api/v1/billed-drift/<str:period>/true-up",
        BilledTrueUpApi.as_view(),
        name="api-billed-trueup",
    ),
    path("allocation/", billing_views.allocation_overview, name="allocation"),
    path("allocation/<str:period>/", billing_views.allocation_period, name="allocation-period"),
    path(
        "allocation/<str:period>/run",
        billing_views.allocation_period_run,
        name="allocation-period-run",
    ),
    path(
        "allocation/<str:period>/close",
        billing_views.allocation_period_close,
        name="allocation-period-close",
    ),
    path("api/v1/events", EventIngestApi.as_view(), name="api-events"),
    path("api/v1/runs", RunIngestApi.as_view(), name="api-runs"),
    path("v1/traces", TracesApi.as_view(), name="otlp-traces"),
    path("v1/logs", LogsApi.as_view(), name="otlp-logs"),
    path("v1/metrics", MetricsApi.as_view(), name="otlp-metrics"),
]

handler404 = "factory_portal.errors.not_found"
handler500 = "factory_portal.errors.server_error"
