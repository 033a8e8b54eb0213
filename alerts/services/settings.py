"""Writes of the alert settings pages: rules, run subscriptions, webhook endpoints, test sends."""

from __future__ import annotations

import secrets
import uuid

from django.db import transaction

from alerts.models import Alert, AlertSettings, RunSubscription, WebhookEndpoint
from alerts.services.engine import AlertSpec, alert_raise
from factory_portal.accounts.models import User


def alert_settings_for_update() -> AlertSettings:
    with transaction.atomic():
        found = AlertSettings.objects.select_for_update().order_by("pk").first()
        return found if found is not None else AlertSettings.objects.create()


def run_subscription_for(user: User) -> RunSubscription:
    found = RunSubscription.objects.filter(user=user).first()
    return found if found is not None else RunSubscription(user=user)


def webhook_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(24)}"


def webhook_create(*, name: str, url: str) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name=name.strip()[:100], url=url, secret=webhook_secret())


def webhook_test_send(*, endpoint: WebhookEndpoint) -> Alert | None:
    """A test alert delivered to this endpoint only (through the outbox, like any alert)."""
    return alert_raise(
        AlertSpec(
            key=f"test:{endpoint.pk}:{uuid.uuid4().hex}",
            kind=Alert.Kind.TEST,
            severity="info",
            title=f"Test delivery to {endpoint.name}",
            body="A test alert sent from the webhook settings page.",
            data={"endpoint": endpoint.name, "test": True},
            users=[],
            webhook_ids=[endpoint.pk],
        )
    )
