"""Raising an alert: once per key, with its inbox notification and its outbox deliveries in the
same transaction, and the delivery tasks enqueued only after commit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction

from alerts.models import Alert, AlertSettings, Delivery, WebhookEndpoint
from factory_portal.accounts.models import Role, User
from factory_portal.broker import enqueue
from notifications.models import Notification
from notifications.services import notification_create

SEVERITIES = {"info", "warning", "critical"}
NOTIFICATION_KIND = {
    Alert.Kind.BUDGET: Notification.Kind.BUDGET,
    Alert.Kind.RUN: Notification.Kind.RUN,
    Alert.Kind.ANOMALY: Notification.Kind.ANOMALY,
    Alert.Kind.FAILURE_RATE: Notification.Kind.FAILURE_RATE,
    Alert.Kind.RUNTIME: Notification.Kind.RUNTIME,
    Alert.Kind.RUN_BUDGET: Notification.Kind.RUN,
    Alert.Kind.COMMITMENT: Notification.Kind.BUDGET,
    Alert.Kind.TEST: Notification.Kind.SYSTEM,
}


@dataclass(frozen=True)
class AlertSpec:
    key: str  # unique per rule, threshold and period: the de-duplication key
    kind: str
    title: str
    body: str = ""
    severity: str = "warning"
    url: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    # In-app: None posts one notification for everyone; a list posts one per user.
    users: list[User] | None = None
    emails: list[str] = field(default_factory=list)
    webhooks: bool = True
    webhook_ids: list[int] | None = None  # only these endpoints (test sends); None: every one
    # A button the inbox shows on the notification: a POST to this path ("Acknowledge").
    action_url: str = ""
    action_label: str = ""


def settings_get() -> AlertSettings:
    """The tenant's settings, or the defaults (unsaved) until an admin saves them."""
    found = AlertSettings.objects.order_by("pk").first()
    return found if found is not None else AlertSettings()


def staff_emails() -> list[str]:
    """Who gets budget, anomaly and failure-rate e-mail: active admins and finance users."""
    if not settings_get().email_enabled:
        return []
    return list(
        User.objects.filter(is_active=True, role__in=[Role.ADMIN, Role.FINANCE])
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
    )


def alert_raise(spec: AlertSpec) -> Alert | None:
    """Store the alert under ``spec.key`` unless it exists; returns None when it did (already
    raised, by this or another worker). Safe to call inside an outer transaction."""
    if spec.severity not in SEVERITIES:
        raise ValueError(f"unknown severity {spec.severity!r}")
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                key=spec.key,
                kind=spec.kind,
                severity=spec.severity,
                title=spec.title[:200],
                body=spec.body,
                url=spec.url,
                data=spec.data,
            )
            _inbox(alert, spec)
            deliveries = _outbox(alert, spec)
    except IntegrityError:
        return None  # the key is taken: raised before, or concurrently
    ids = [d.pk for d in deliveries]
    schema = connection.schema_name
    transaction.on_commit(lambda: deliveries_enqueue(ids, schema=schema))
    return alert


def _inbox(alert: Alert, spec: AlertSpec) -> None:
    kind = NOTIFICATION_KIND[alert.kind]
    common = {
        "kind": kind,
        "title": alert.title,
        "severity": alert.severity,
        "body": alert.body,
        "url": alert.url,
        "action_url": spec.action_url,
        "action_label": spec.action_label,
    }
    if spec.users is None:
        notification_create(dedup_key=f"alert:{alert.pk}", **common)
        return
    for user in spec.users:
        notification_create(user=user, dedup_key=f"alert:{alert.pk}:{user.pk}", **common)


def _outbox(alert: Alert, spec: AlertSpec) -> list[Delivery]:
    rows = [
        Delivery(alert=alert, channel=Delivery.Channel.EMAIL, recipient=email)
        for email in dict.fromkeys(spec.emails)
    ]
    if spec.webhooks:
        endpoints = WebhookEndpoint.objects.filter(enabled=True)
        if spec.webhook_ids is not None:
            endpoints = endpoints.filter(pk__in=spec.webhook_ids)
        rows += [
            Delivery(alert=alert, channel=Delivery.Channel.WEBHOOK, endpoint=endpoint)
            for endpoint in endpoints
        ]
    return Delivery.objects.bulk_create(rows)


def deliveries_enqueue(ids: Iterable[int], *, schema: str) -> int:
    """Hand deliveries to Celery (in ``schema``). A broker that is down loses nothing: the rows
    stay pending and the beat sweeper enqueues them later. Returns how many were enqueued."""
    from alerts.tasks import delivery_send_task

    enqueued = 0
    for delivery_id in ids:
        if not enqueue(delivery_send_task, schema=schema, args=[delivery_id]):
            break  # the broker is down: the outbox rows wait for the sweeper
        enqueued += 1
    return enqueued
