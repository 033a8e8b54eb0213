"""Alert rules, decided alerts and their deliveries (tenant schema).

An ``Alert`` is a decision ("budget web 80% actual, November"), stored once under a unique
``key`` per rule, threshold and period: evaluating again, or on two workers at once, finds the key
taken and sends nothing. The same transaction writes the in-app notification and one
``Delivery`` row per e-mail recipient and webhook endpoint: the transactional outbox. A delivery
is sent by a Celery task enqueued after commit; if the broker is down the row stays ``pending``
and the beat sweeper sends it once the broker is back.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class AlertSettings(models.Model):
    """The tenant's rule settings (one row)."""

    anomaly_enabled = models.BooleanField(default=True)
    # AI cost of the last hour above this many times its trailing average for that hour of week.
    anomaly_factor = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("2.00"),
        validators=[MinValueValidator(Decimal("1.1"))],
    )
    # Hours whose cost is below this are never anomalous (noise of small numbers).
    anomaly_min_cost = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("1.00"))
    anomaly_cooldown_hours = models.PositiveSmallIntegerField(default=6)
    failure_rate_enabled = models.BooleanField(default=True)
    failure_rate_window = models.PositiveSmallIntegerField(
        default=20, validators=[MinValueValidator(5), MaxValueValidator(1000)]
    )
    failure_rate_threshold = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )  # percent
    failure_rate_cooldown_hours = models.PositiveSmallIntegerField(default=6)
    # E-mail for budget, anomaly and failure-rate alerts goes to admins and finance users.
    email_enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return "alert settings"


class RunSubscription(models.Model):
    """What one user hears about finished runs (in the inbox, and by e-mail if chosen)."""

    class Mode(models.TextChoices):
        ALL = "all", "Every finished run"
        FAILURES = "failures", "Failed runs only"
        PROJECT = "project", "Every finished run of one project"
        NONE = "none", "None"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="run_subscription"
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.NONE)

    class Email(models.TextChoices):
        OFF = "off", "No e-mail"
        EACH = "each", "An e-mail for each run"
        DIGEST = "digest", "One e-mail an hour (digest)"

    project = models.CharField(max_length=100, blank=True)
    email = models.CharField(max_length=8, choices=Email.choices, default=Email.OFF)
    digest_sent_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.mode} {self.project}"


class Alert(models.Model):
    class Kind(models.TextChoices):
        BUDGET = "budget", "Budget"
        RUN = "run", "Run"
        ANOMALY = "anomaly", "Cost anomaly"
        FAILURE_RATE = "failure_rate", "Failure rate"
        RUNTIME = "runtime", "Runtime"
        RUN_BUDGET = "run_budget", "Run over budget"
        COMMITMENT = "commitment", "Prepaid commitment"
        TEST = "test", "Test"

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    severity = models.CharField(max_length=16, default="warning")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict)  # the webhook payload's "data" (stable schema)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.key


class WebhookEndpoint(models.Model):
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100)  # shown to the admin, used to sign every request
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


class OutboxRow(models.Model):
    """What an outbox row records as it is sent (``alerts.services.outbox``): its state, attempts,
    next attempt and the delivery log's figures. Alert deliveries and incident pages
    (``alerts.oncall.models.Page``) are outbox rows."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


class Delivery(OutboxRow):
    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    recipient = models.CharField(max_length=254, blank=True)  # e-mail address

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_pending_idx",
                condition=models.Q(status="pending"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "channel", "endpoint", "recipient"],
                name="delivery_once",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.channel} {self.recipient or self.endpoint_id} {self.status}"


class PendingRunEvaluation(models.Model):
    """A finished run whose run alerts are not evaluated yet: written in the ingest transaction
    that finished the run and deleted once evaluated, so a broker outage or a lost task delays
    run alerts (the beat sweeper picks them up) but never loses them."""

    run = models.OneToOneField(
        "usage.Run", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"run {self.run_id} pending since {self.created_at:%H:%M:%S}"
