from django.apps import AppConfig


class OncallConfig(AppConfig):
    """Runtime alert rules and who gets paged: rule settings, incidents (pending → firing →
    resolved), silences, routes (PagerDuty, Slack, Microsoft Teams, e-mail) and their outbox.

    Both a shared and a tenant app, like ``runtime``: in the public schema its rules watch the
    platform's series and page the operator's routes; in a tenant schema they watch that tenant's
    runs and series and page the tenant's routes (and post to its inbox through ``alerts``)."""

    name = "alerts.oncall"
    label = "oncall"
    verbose_name = "On-call alerting"
