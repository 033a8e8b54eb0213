"""Runtime alerting (public schema for the operator, each tenant schema for that tenant).

``RuleSetting`` overrides a rule's defaults (``alerts.oncall.domain.rules.RULES``): one row per
changed rule. ``Incident`` is one alert instance of a rule and label set (a queue, say), going
pending → firing → resolved; at most one is open (pending or firing) per fingerprint. ``Silence``
mutes notifications of matching incidents until a time. ``Route`` says where each severity goes;
``Page`` is the outbox: one row per incident event and route, written in the transaction that
moved the incident, sent once, retried with backoff, kept as the delivery log.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from alerts.models import OutboxRow


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"


class RuleSetting(models.Model):
    """A rule's settings in this schema (absent: the rule's defaults)."""

    rule = models.CharField(max_length=64, unique=True)
    enabled = models.BooleanField(default=True)
    threshold = models.DecimalField(max_digits=14, decimal_places=4)
    window_s = models.PositiveIntegerField()  # the condition's look-back window
    for_s = models.PositiveIntegerField()  # how long it must hold before firing
    severity = models.CharField(max_length=8, choices=Severity.choices)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.CharField(max_length=254, blank=True)

    def __str__(self) -> str:
        return self.rule


class Incident(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    rule = models.CharField(max_length=64)
    labels = models.JSONField(default=dict)  # what the instance is about: {"queue_name": "q1"}
    fingerprint = models.CharField(max_length=64)  # rule and labels, hashed (stable)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    summary = models.CharField(max_length=300)  # "Queue q1: 1,240 jobs waiting (over 1,000)"
    value = models.FloatField(null=True, blank=True)  # the condition's latest value
    threshold = models.FloatField()
    peak = models.FloatField(null=True, blank=True)  # the worst value while open
    started_at = models.DateTimeField(default=timezone.now)  # pending since
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The condition has been false since (firing only): resolved once it stays false long enough.
    clear_since = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(default=timezone.now)
    # When the trigger went to the routes (None while silenced: sent when the silence ends, if
    # still firing); a resolve is sent only for an incident whose trigger was.
    notified_at = models.DateTimeField(null=True, blank=True)
    silence = models.ForeignKey(
        "Silence", null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["state", "-started_at"], name="incident_state_started"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=models.Q(state__in=["pending", "firing"]),
                name="incident_one_open_per_fingerprint",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} {self.labels} {self.state}"


class Silence(models.Model):
    """Mutes notifications of incidents of ``rule`` (blank: any rule) whose labels include
    ``matchers``, from ``starts_at`` until ``ends_at``."""

    rule = models.CharField(max_length=64, blank=True)
    matchers = models.JSONField(default=dict, blank=True)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300)
    created_by = models.CharField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-ends_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule or 'any rule'} {self.matchers} until {self.ends_at:%Y-%m-%d %H:%M}"


class Route(models.Model):
    """Where incidents of the listed severities are sent. Secrets (the PagerDuty routing key, a
    Slack or Teams webhook URL) are stored like webhook secrets and shown masked."""

    class Channel(models.TextChoices):
        PAGERDUTY = "pagerduty", "PagerDuty (Events API v2)"
        SLACK = "slack", "Slack (incoming webhook)"
        TEAMS = "teams", "Microsoft Teams (incoming webhook)"
        EMAIL = "email", "E-mail"

    name = models.CharField(max_length=100)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    severities = models.JSONField(default=list)  # ["critical"], ["warning", "critical"], …
    # Slack/Teams: the incoming-webhook URL; e-mail: addresses, comma-separated (blank: the
    # tenant's admins, or the operators on the platform); PagerDuty: unused.
    target = models.CharField(max_length=1000, blank=True)
    routing_key = models.CharField(max_length=100, blank=True)  # PagerDuty integration key
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.channel})"


class Page(OutboxRow):
    """One incident event sent to one route (the outbox row and its delivery log)."""

    class Event(models.TextChoices):
        TRIGGER = "trigger", "Trigger"
        ACKNOWLEDGE = "acknowledge", "Acknowledge"
        RESOLVE = "resolve", "Resolve"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="pages")
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="pages")
    event = models.CharField(max_length=12, choices=Event.choices)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="page_pending_idx",
                condition=models.Q(status="pending"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["incident", "event", "route"], name="page_once"),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.event} → {self.route_id} {self.status}"
