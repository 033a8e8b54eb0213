"""URLs of the bare base domain: the operator console."""

from django.urls import path

from billing.platform import views as allocation_views
from billing.platform.api import RuleDetailApi, RuleListApi
from factory_portal.accounts.api import WhoAmIApi
from factory_portal.accounts.views import LoginView, LogoutView
from factory_portal.tenants import views as tenant_views
from usage.api import EventIngestApi, RunIngestApi, TracesApi

urlpatterns = [
    path("", tenant_views.console, name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("api/v1/whoami", WhoAmIApi.as_view(), name="api-whoami"),
    path("api/v1/allocation-rules", RuleListApi.as_view(), name="api-allocation-rules"),
    path("api/v1/allocation-rules/<int:pk>", RuleDetailApi.as_view(), name="api-allocation-rule"),
    path("allocation/", allocation_views.allocation_overview, name="allocation"),
    path("allocation/<str:period>/", allocation_views.allocation_period, name="allocation-period"),
    path(
        "allocation/<str:period>/run",
        allocation_views.allocation_period_run,
        name="allocation-period-run",
    ),
    path("api/v1/events", EventIngestApi.as_view(), name="api-events"),
    path("api/v1/runs", RunIngestApi.as_view(), name="api-runs"),
    path("v1/traces", TracesApi.as_view(), name="otlp-traces"),
]
