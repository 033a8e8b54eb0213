"""URLs of a tenant's host (``<slug>.<base domain>``)."""

from django.urls import path

from billing import pages as billing_pages
from billing import views as billing_views
from factory_portal import dashboards
from factory_portal.accounts.api import WhoAmIApi
from factory_portal.accounts.views import LoginView, LogoutView
from usage import views as usage_views
from usage.api import EventIngestApi, ProjectListApi, RunIngestApi, TracesApi

urlpatterns = [
    path("", dashboards.overview, name="home"),
    path("costs/", billing_pages.costs, name="costs"),
    path("runs/", usage_views.run_list, name="runs"),
    path("runs.csv", usage_views.run_list_csv, name="runs-csv"),
    path("runs/active/", usage_views.active_runs, name="runs-active"),
    path("runs/<str:run_id>/", dashboards.run_detail, name="run-detail"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("reports/<str:period>/<str:fmt>", billing_views.report_download, name="report-download"),
    path("api/v1/whoami", WhoAmIApi.as_view(), name="api-whoami"),
    path("api/v1/projects", ProjectListApi.as_view(), name="api-projects"),
    path("api/v1/events", EventIngestApi.as_view(), name="api-events"),
    path("api/v1/runs", RunIngestApi.as_view(), name="api-runs"),
    path("v1/traces", TracesApi.as_view(), name="otlp-traces"),
]
