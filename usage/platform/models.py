"""Trace routing for OTLP ingest (public schema)."""

from __future__ import annotations

from django.db import models


class TraceRoute(models.Model):
    """A trace's run, learnt from its ``factory.run.execute`` span: later spans of the trace that
    carry no run attributes are attributed through it."""

    trace_id = models.CharField(max_length=32, unique=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    run_id = models.CharField(max_length=128)
    project = models.CharField(max_length=100)
    # Learnt from the platform key (routes platform spans) or from the tenant's own key (routes
    # only that tenant's spans): a tenant can never route another sender's spans.
    via_platform = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.trace_id} -> {self.run_id}"


class PendingSpan(models.Model):
    """A usable span whose run is not known yet (its run span is usually exported last, in a
    later request). Stored, not dropped; ingested as soon as the run span arrives."""

    trace_id = models.CharField(max_length=32, db_index=True)
    span_id = models.CharField(max_length=16)
    tenant_hint = models.CharField(max_length=40, blank=True)  # the tenant host it came to
    record = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trace_id", "span_id", "tenant_hint"], name="pending_span_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trace_id}/{self.span_id}"
