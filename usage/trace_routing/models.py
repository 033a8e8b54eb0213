"""Trace routing for OTLP ingest (public schema)."""

from __future__ import annotations

from django.db import models


class TraceRoute(models.Model):
    """A trace's run in one tenant, learnt from its ``factory.run.execute`` span: later spans of
    the trace that carry no run attributes are attributed through it. Keyed by tenant and trace
    id: trace ids are chosen by senders, so two tenants may use the same one independently."""

    trace_id = models.CharField(max_length=32, db_index=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    run_id = models.CharField(max_length=128)
    project = models.CharField(max_length=100)
    # Learnt from the platform key (routes platform spans) or from the tenant's own key (routes
    # only that tenant's spans): a tenant can never route another sender's spans.
    via_platform = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "trace_id"], name="trace_route_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.trace_id} -> {self.run_id}"


class PendingSpan(models.Model):
    """A usable span whose run is not known yet (its run span is usually exported last, in a
    later request). Stored, not dropped; ingested as soon as the run span arrives. Bounded per
    sender (``OTLP_MAX_PARKED_SPANS``) and deleted after ``OTLP_PARKED_SPAN_TTL_SECONDS``."""

    trace_id = models.CharField(max_length=32, db_index=True)
    span_id = models.CharField(max_length=16)
    # The sender: the tenant whose key sent it, or "" for the platform key.
    tenant_hint = models.CharField(max_length=40, blank=True)
    record = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trace_id", "span_id", "tenant_hint"], name="pending_span_unique"
            ),
        ]
        indexes = [models.Index(fields=["tenant_hint"], name="pending_span_sender")]

    def __str__(self) -> str:
        return f"{self.trace_id}/{self.span_id}"
