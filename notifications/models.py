"""The in-app inbox of a tenant (tenant schema): notifications and who has read them.

A notification is addressed to one user or, with ``user`` empty, to everyone in the tenant. Read
state is per user (``NotificationRead``), so one person reading a shared notification does not
mark it read for the others. What posts notifications (budget thresholds, runs, anomalies) lives
elsewhere and calls ``notifications.services.notification_create``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Notification(models.Model):
    class Kind(models.TextChoices):
        BUDGET = "budget", "Budget"
        RUN = "run", "Run"
        ANOMALY = "anomaly", "Anomaly"
        FAILURE_RATE = "failure_rate", "Failure rate"
        RUNTIME = "runtime", "Runtime alert"
        SYSTEM = "system", "System"

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.INFO)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)  # a path on this host or an http(s) URL
    # One action the inbox offers as a button: a POST to a path on this host ("Acknowledge").
    action_url = models.CharField(max_length=500, blank=True)
    action_label = models.CharField(max_length=40, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    # Lets whoever posts (e.g. "budget:web:2026-11:80") post each event once; blank = no dedup.
    dedup_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="notification_newest")]
        constraints = [
            models.UniqueConstraint(
                fields=["dedup_key"],
                condition=~models.Q(dedup_key=""),
                name="notification_dedup_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.title}"


class NotificationRead(models.Model):
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_reads"
    )
    read_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "user"], name="notification_read_once_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.notification_id}"
