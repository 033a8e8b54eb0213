"""Forms of the alert settings pages."""

from __future__ import annotations

from django import forms

from alerts.models import AlertSettings, RunSubscription, WebhookEndpoint
from alerts.services.webhook_http import WebhookRefused, webhook_url_check


class AlertSettingsForm(forms.ModelForm):
    class Meta:
        model = AlertSettings
        fields = [
            "anomaly_enabled",
            "anomaly_factor",
            "anomaly_min_cost",
            "anomaly_cooldown_hours",
            "failure_rate_enabled",
            "failure_rate_window",
            "failure_rate_threshold",
            "failure_rate_cooldown_hours",
            "email_enabled",
        ]
        labels = {
            "anomaly_enabled": "Watch for cost anomalies",
            "anomaly_factor": "Anomaly when the hour's AI cost exceeds this many times its usual",
            "anomaly_min_cost": "…and is at least (USD)",
            "anomaly_cooldown_hours": "Cool-down between anomaly alerts (hours)",
            "failure_rate_enabled": "Watch the run failure rate",
            "failure_rate_window": "Over the last N finished runs",
            "failure_rate_threshold": "Alert at this failure rate (%)",
            "failure_rate_cooldown_hours": "Cool-down between failure-rate alerts (hours)",
            "email_enabled": "E-mail budget, anomaly and failure-rate alerts to admins and finance",
        }


class RunSubscriptionForm(forms.ModelForm):
    class Meta:
        model = RunSubscription
        fields = ["mode", "project", "email"]
        labels = {
            "mode": "Tell me about",
            "project": "Project (for “one project”)",
            "email": "E-mail",
        }

    def clean(self):  # type: ignore[no-untyped-def]
        data = super().clean()
        if data.get("mode") == RunSubscription.Mode.PROJECT and not data.get("project"):
            self.add_error("project", "Choose the project to hear about.")
        if data.get("mode") != RunSubscription.Mode.PROJECT:
            data["project"] = ""
        return data


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url"]
        labels = {"url": "URL (https://…)"}

    url = forms.URLField(label="URL (https://…)", max_length=500, assume_scheme="https")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            webhook_url_check(url)
        except WebhookRefused as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url
