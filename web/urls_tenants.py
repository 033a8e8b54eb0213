"""URLs of a tenant's host (``<slug>.<base domain>``)."""

from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from alerts import views as alert_views
from alerts.api import NotificationListApi, WebhookDetailApi, WebhookListApi
from alerts.oncall import views as oncall_views
from alerts.oncall import views_routes as route_views
from alerts.oncall import views_rules as runtime_rule_views
from alerts.oncall.api import (
    IncidentAckApi,
    IncidentDetailApi,
    IncidentListApi,
    SilenceDetailApi,
    SilenceListApi,
)
from billing import views as billing_views
from billing.api import (
    BudgetDetailApi,
    BudgetListApi,
    CommitmentListApi,
    CostsApi,
    ForecastApi,
    MonthlyReportApi,
    RunBudgetDetailApi,
    RunBudgetListApi,
    RunGuardApi,
)
from billing.api_cost_change import CostChangeApi
from billing.api_quotes import QuoteApi
from billing.savings_api import RecommendationDismissApi, SavingsApi
from factory_portal.accounts import views as account_views
from factory_portal.accounts.api import WhoAmIApi
from factory_portal.accounts.views import LoginView, LogoutView
from factory_portal.tenants import views as tenant_views
from notifications import views as notification_views
from runtime import views as runtime_views
from runtime.api import MetricsApi
from runtime.read_api import StatusApi
from saved import views as saved_views
from usage import error_views
from usage import views as usage_views
from usage.api import EventIngestApi, ProjectListApi, TracesApi
from usage.api_errors import ErrorGroupsApi
from usage.api_logs import LogsApi
from usage.api_runs import RunsApi
from usage.read_api import RunDetailApi, StepsApi, UsageApi
from web import dashboards, onboarding
from web.urls_alert_routes import alert_route_urls, alert_urls

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("settings/alerts/", alert_views.alert_settings, name="alert-settings"),
    path("settings/webhooks/", alert_views.webhooks, name="webhooks"),
    path("settings/webhooks/<int:pk>/", alert_views.webhook_detail, name="webhook-detail"),
    path("settings/webhooks/<int:pk>/test", alert_views.webhook_test, name="webhook-test"),
    path("settings/webhooks/<int:pk>/toggle", alert_views.webhook_toggle, name="webhook-toggle"),
    path("settings/webhooks/<int:pk>/delete", alert_views.webhook_delete, name="webhook-delete"),
    path("settings/run-alerts/", alert_views.run_alerts, name="run-alerts"),
    *alert_route_urls("settings/alert-routes/", route_views.FOR_ADMINS),
    *alert_urls(
        alerts=oncall_views.alerts,
        incident=oncall_views.incident,
        ack=oncall_views.incident_ack,
        silences=oncall_views.silences,
        silence_end=oncall_views.silence_end_now,
    ),
    path("settings/alert-rules/", runtime_rule_views.tenant_rules, name="runtime-rules"),
    path("favicon.ico", RedirectView.as_view(url=static("img/favicon.svg"), permanent=True)),
    path("", dashboards.overview, name="home"),
    path("welcome/dismiss", onboarding.onboarding_dismiss, name="onboarding-dismiss"),
    path("costs/", billing_views.costs, name="costs"),
    path("costs/quotes/", billing_views.quotes, name="quotes"),
    path("costs/commitments/", billing_views.commitments, name="commitments"),
    path("costs/savings/", billing_views.savings, name="savings"),
    path(
        "costs/savings/<str:key>/dismiss",
        billing_views.savings_dismiss,
        name="savings-dismiss",
    ),
    path(
        "costs/savings/<str:key>/restore",
        billing_views.savings_restore,
        name="savings-restore",
    ),
    path("runs/", usage_views.run_list, name="runs"),
    path("runs.csv", usage_views.run_list_csv, name="runs-csv"),
    path("runs/active/", dashboards.active_runs, name="runs-active"),
    path("usage/", usage_views.usage_report, name="usage"),
    path("errors/", error_views.error_groups, name="errors"),
    path("errors/<str:fingerprint>/", error_views.error_group, name="error-group"),
    path("steps/", usage_views.steps, name="steps"),
    path("status/", runtime_views.status_page, name="status"),
    path("health/factory/", runtime_views.factory_health, name="factory-health"),
    path("health/queues/", runtime_views.queues, name="queues"),
    path("runs/<path:run_id>/", dashboards.run_detail, name="run-detail"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("reports/", billing_views.reports, name="reports"),
    path("reports/<str:period>/<str:fmt>", billing_views.report_download, name="report-download"),
    path("budgets/", billing_views.budgets, name="budgets"),
    path("budgets/<int:pk>/", billing_views.budget_edit, name="budget-edit"),
    path("budgets/<int:pk>/delete/", billing_views.budget_delete, name="budget-delete"),
    path("budgets/runs/", billing_views.run_budgets, name="run-budgets"),
    path(
        "budgets/runs/<int:pk>/delete/", billing_views.run_budget_delete, name="run-budget-delete"
    ),
    path("notifications/", notification_views.inbox, name="notifications"),
    path("notifications/<int:pk>/read/", notification_views.mark_read, name="notification-read"),
    path(
        "notifications/read-all/",
        notification_views.mark_all_read,
        name="notifications-read-all",
    ),
    path("saved/", saved_views.saved_views, name="saved-views"),
    path("saved/new", saved_views.create, name="saved-view-create"),
    path("saved/<int:pk>/rename", saved_views.rename, name="saved-view-rename"),
    path("saved/<int:pk>/share", saved_views.share, name="saved-view-share"),
    path("saved/<int:pk>/delete", saved_views.delete, name="saved-view-delete"),
    path("saved/schedules/new", saved_views.schedule_create, name="saved-schedule-create"),
    path(
        "saved/schedules/<int:pk>/delete",
        saved_views.schedule_delete,
        name="saved-schedule-delete",
    ),
    path("settings/api-keys/", account_views.api_keys, name="api-keys"),
    path(
        "settings/api-keys/<int:pk>/revoke/",
        account_views.api_key_revoke,
        name="api-key-revoke",
    ),
    path("settings/users/", account_views.users, name="users"),
    path("settings/workspace/", tenant_views.workspace_settings, name="workspace-settings"),
    path("settings/users/<int:pk>/role/", account_views.user_role, name="user-role"),
    path(
        "settings/users/<int:pk>/deactivate/",
        account_views.user_deactivate,
        name="user-deactivate",
    ),
    path(
        "settings/users/<int:pk>/reactivate/",
        account_views.user_reactivate,
        name="user-reactivate",
    ),
    path("settings/users/<int:pk>/invite/", account_views.user_reinvite, name="user-reinvite"),
    path(
        "invite/<uidb64>/<token>/",
        account_views.InvitationAcceptView.as_view(),
        name="invite-accept",
    ),
    path("api/v1/whoami", WhoAmIApi.as_view(), name="api-whoami"),
    path("api/v1/projects", ProjectListApi.as_view(), name="api-projects"),
    path("api/v1/usage", UsageApi.as_view(), name="api-usage"),
    path("api/v1/steps", StepsApi.as_view(), name="api-steps"),
    path("api/v1/costs", CostsApi.as_view(), name="api-costs"),
    path("api/v1/costs/change", CostChangeApi.as_view(), name="api-costs-change"),
    path("api/v1/savings", SavingsApi.as_view(), name="api-savings"),
    path(
        "api/v1/savings/recommendations/<str:key>/dismiss",
        RecommendationDismissApi.as_view(),
        name="api-savings-dismiss",
    ),
    path("api/v1/forecast", ForecastApi.as_view(), name="api-forecast"),
    path("api/v1/quotes", QuoteApi.as_view(), name="api-quotes"),
    path("api/v1/reports/monthly", MonthlyReportApi.as_view(), name="api-report-monthly"),
    path("api/v1/notifications", NotificationListApi.as_view(), name="api-notifications"),
    path("api/v1/budgets", BudgetListApi.as_view(), name="api-budgets"),
    path("api/v1/commitments", CommitmentListApi.as_view(), name="api-commitments"),
    path("api/v1/budgets/<int:pk>", BudgetDetailApi.as_view(), name="api-budget"),
    path("api/v1/run-budgets", RunBudgetListApi.as_view(), name="api-run-budgets"),
    path("api/v1/run-budgets/<int:pk>", RunBudgetDetailApi.as_view(), name="api-run-budget"),
    path("api/v1/webhooks", WebhookListApi.as_view(), name="api-webhooks"),
    path("api/v1/webhooks/<int:pk>", WebhookDetailApi.as_view(), name="api-webhook"),
    path("api/v1/events", EventIngestApi.as_view(), name="api-events"),
    path("api/v1/runs", RunsApi.as_view(), name="api-runs"),
    # Before the catch-all below (a run id may hold '/'; none may end in "/guard": id_check).
    path("api/v1/runs/<path:run_id>/guard", RunGuardApi.as_view(), name="api-run-guard"),
    path("api/v1/runs/<path:run_id>", RunDetailApi.as_view(), name="api-run"),
    path("api/v1/errors", ErrorGroupsApi.as_view(), name="api-errors"),
    path("api/v1/status", StatusApi.as_view(), name="api-status"),
    path("api/v1/alerts", IncidentListApi.as_view(), name="api-alerts"),
    path("api/v1/alerts/<int:pk>", IncidentDetailApi.as_view(), name="api-alert"),
    path("api/v1/alerts/<int:pk>/ack", IncidentAckApi.as_view(), name="api-alert-ack"),
    path("api/v1/silences", SilenceListApi.as_view(), name="api-silences"),
    path("api/v1/silences/<int:pk>", SilenceDetailApi.as_view(), name="api-silence"),
    path("v1/traces", TracesApi.as_view(), name="otlp-traces"),
    path("v1/logs", LogsApi.as_view(), name="otlp-logs"),
    path("v1/metrics", MetricsApi.as_view(), name="otlp-metrics"),
]

handler404 = "factory_portal.errors.not_found"
handler500 = "factory_portal.errors.server_error"
