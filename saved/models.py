"""Saved views, their schedules and the scheduled e-mails' outbox (tenant schema)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from alerts.models import OutboxRow
from saved.domain import CADENCES, NAME_MAX, QUERY_MAX


class SavedView(models.Model):
    """An analytics page (``path``, one of ``domain.PAGES``) with its query, under a name unique
    per owner; ``shared`` makes it visible to everyone in the tenant."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    name = models.CharField(max_length=NAME_MAX)
    path = models.CharField(max_length=200)
    query = models.CharField(max_length=QUERY_MAX, blank=True)
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="saved_view_name_per_owner"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def href(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


class Schedule(models.Model):
    """An e-mail of a saved view (``view``) or, with ``view`` empty, of the last closed month's
    report, sent weekly or monthly to ``recipients``."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_schedules"
    )
    view = models.ForeignKey(
        SavedView, null=True, blank=True, on_delete=models.CASCADE, related_name="schedules"
    )
    cadence = models.CharField(max_length=8, choices=list(CADENCES.items()))
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.cadence} {self.view or 'monthly report'}"


class ScheduledSend(OutboxRow):
    """One e-mail of one occurrence of a schedule to one user: made once (the constraint), sent
    at most once by the outbox (``alerts.services.outbox``)."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="sends")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    occurrence = models.DateField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="scheduled_send_pending_idx",
                condition=models.Q(status="pending"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "recipient", "occurrence"], name="scheduled_send_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} {self.recipient_id} {self.occurrence} {self.status}"
