"""Observability of the alert deliveries (cross-app: the kernel's metrics and tracing seen through
the alerts app): webhook deliveries are counted by channel and outcome, and each webhook call is a
client span of the tenant that carries the trace context and no credential."""

from __future__ import annotations

from django.test import override_settings
from django_tenants.utils import schema_context
from opentelemetry.trace import SpanKind

from alerts.models import Alert, Delivery, WebhookEndpoint
from alerts.services.deliver import delivery_send
from alerts.services.engine import AlertSpec, alert_raise
from alerts.tests.test_alerts import Receiver
from factory_portal.observability import context
from factory_portal.observability.tests.conftest import spans  # noqa: F401  (fixture)
from factory_portal.observability.tests.test_metrics import (  # noqa: F401  (fixture)
    loopback_allowed,
    scrape,
    value,
)


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_deliveries_are_counted_by_channel_and_outcome(alpha, django_capture_on_commit_callbacks):
    receiver = Receiver([200, 410])
    labels = {"channel": "webhook"}
    before = scrape()
    try:
        with schema_context(alpha.schema), django_capture_on_commit_callbacks(execute=True):
            WebhookEndpoint.objects.create(name="ops", url=receiver.url, secret="k")
            for key in ("m:1", "m:2"):
                alert = alert_raise(AlertSpec(key=key, kind=Alert.Kind.TEST, title="Test"))
                delivery_send(Delivery.objects.get(alert=alert).pk)
    finally:
        receiver.close()
    after = scrape()
    for outcome in ("sent", "failed"):
        assert value(after, "notification_deliveries_total", outcome=outcome, **labels) == (
            value(before, "notification_deliveries_total", outcome=outcome, **labels) + 1
        )


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_webhook_calls_are_client_spans_of_the_tenant_and_carry_the_trace_context(spans, alpha):  # noqa: F811
    receiver = Receiver([])
    try:
        with schema_context(alpha.schema), context.bind(tenant_id="alpha"):
            # Chat and paging webhooks carry their credential in the path.
            url = f"{receiver.url.rstrip('/')}/services/T0/B0/hook-secret-in-path?sig=abc"
            WebhookEndpoint.objects.create(name="ops", url=url, secret="k")
            alert = alert_raise(AlertSpec(key="trace:1", kind=Alert.Kind.TEST, title="Test"))
            assert delivery_send(Delivery.objects.get(alert=alert).pk).status == "sent"
    finally:
        receiver.close()
    outbound = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CLIENT and "db.system" not in s.attributes
    ]
    (call,) = outbound
    assert call.attributes["tenant.id"] == "alpha"
    headers, _ = receiver.requests[0]
    assert format(call.context.trace_id, "032x") in headers["traceparent"]
    recorded = " ".join(str(v) for v in call.attributes.values()) + call.name
    assert "hook-secret-in-path" not in recorded
    assert "abc" not in recorded
    origin = receiver.url.split("://", 1)[1].split("/", 1)[0]
    assert call.attributes.get("http.url", call.attributes.get("url.full")) == (
        f"http://{origin}/[redacted]"
    )
