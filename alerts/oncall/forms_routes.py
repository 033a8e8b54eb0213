"""The form of the alert routes pages (tenant admins and the operator)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from alerts.oncall.models import Route, Severity
from alerts.services.webhook_http import WebhookRefused, webhook_url_check

PAGERDUTY_KEY = re.compile(r"[A-Za-z0-9]{32}")
EMAILS_MAX = 20


class RouteForm(forms.Form):
    name = forms.CharField(max_length=100)
    channel = forms.ChoiceField(choices=Route.Channel.choices)
    severities = forms.MultipleChoiceField(
        choices=Severity.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Severities it receives",
        error_messages={"required": "Choose at least one severity."},
    )
    target = forms.CharField(required=False, max_length=1000)
    routing_key = forms.CharField(
        required=False,
        max_length=100,
        label="PagerDuty: the integration key of an Events API v2 integration (32 characters)",
    )

    def __init__(self, *args: Any, admins: str = "the admins", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].label = (
            "Slack or Teams: the incoming-webhook URL (https://…); e-mail: addresses,"
            f" comma-separated (blank: {admins})"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        channel = data.get("channel")
        target = (data.get("target") or "").strip()
        key = (data.get("routing_key") or "").strip()
        data["name"] = (data.get("name") or "").strip()
        if channel == Route.Channel.PAGERDUTY:
            if not PAGERDUTY_KEY.fullmatch(key):
                self.add_error(
                    "routing_key",
                    "A PagerDuty integration key is 32 letters and digits (the service's Events"
                    " API v2 integration shows it as Integration Key).",
                )
            data["target"], data["routing_key"] = "", key
        elif channel in (Route.Channel.SLACK, Route.Channel.TEAMS):
            error = _webhook_url_error(target)
            if error:
                self.add_error("target", error)
            data["target"], data["routing_key"] = target, ""
        elif channel == Route.Channel.EMAIL:
            addresses, error = _addresses(target)
            if error:
                self.add_error("target", error)
            data["target"], data["routing_key"] = ", ".join(addresses), ""
        return data


def _webhook_url_error(url: str) -> str:
    if not url:
        return "Paste the channel's incoming-webhook URL."
    if urlsplit(url).scheme != "https":
        return "The incoming-webhook URL must start with https://."
    try:
        webhook_url_check(url)
    except WebhookRefused as exc:
        return str(exc)
    return ""


def _addresses(text: str) -> tuple[list[str], str]:
    addresses = list(dict.fromkeys(a.strip().lower() for a in text.split(",") if a.strip()))
    if len(addresses) > EMAILS_MAX:
        return addresses, f"At most {EMAILS_MAX} addresses."
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            return addresses, f"{address!r} is not an e-mail address."
    return addresses, ""
