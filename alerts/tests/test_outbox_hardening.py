"""The outbox against hostile state: a suspended tenant sends nothing (its pending e-mails and
webhooks fail unsent, with the reason in the delivery log), and a client string in an alert title
never breaks or extends an e-mail's headers."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django_tenants.utils import schema_context

from alerts.models import Alert, Delivery, WebhookEndpoint
from alerts.services.deliver import delivery_send
from alerts.services.engine import AlertSpec, alert_raise
from alerts.tasks import deliveries_flush_tenant
from alerts.tests.test_alerts import Receiver
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.services import tenant_set_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver([])
    yield server
    server.close()


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_a_suspended_tenants_outbox_is_not_sent(alpha, receiver, mailoutbox):
    with schema_context(alpha.schema):
        WebhookEndpoint.objects.create(name="ops", url=receiver.url, secret="s3cret")
        alert_raise(
            AlertSpec(
                key="budget:x", kind=Alert.Kind.BUDGET, title="Over", emails=[alpha.admin_email]
            )
        )
        assert Delivery.objects.filter(status="pending").count() == 2  # e-mail to the admin, hook
    tenant_set_status(tenant=Tenant.objects.get(slug="alpha"), status="suspended")

    with schema_context(alpha.schema):
        assert deliveries_flush_tenant() == {"failed": 2}
        deliveries = list(Delivery.objects.all())
    assert receiver.requests == [] and mailoutbox == []
    assert {(d.status, d.last_error, d.attempts) for d in deliveries} == {
        ("failed", "Not sent: the account is suspended.", 0)
    }


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_an_active_tenants_outbox_is_sent(alpha, receiver, mailoutbox):
    with schema_context(alpha.schema):
        WebhookEndpoint.objects.create(name="ops", url=receiver.url, secret="s3cret")
        alert = alert_raise(
            AlertSpec(
                key="budget:x", kind=Alert.Kind.BUDGET, title="Over", emails=[alpha.admin_email]
            )
        )
        for delivery in Delivery.objects.filter(alert=alert):
            assert delivery_send(delivery.pk).status == "sent"
    assert len(receiver.requests) == 1 and len(mailoutbox) == 1


def test_an_alert_title_with_a_line_break_is_mailed_on_one_line(alpha, mailoutbox):
    with schema_context(alpha.schema):
        alert = alert_raise(
            AlertSpec(
                key="run:x",
                kind=Alert.Kind.RUN,
                title="Run evil\r\nBcc: victim@example.test failed",
                emails=[alpha.admin_email],
            )
        )
        delivery = Delivery.objects.get(alert=alert)
        assert delivery_send(delivery.pk).status == "sent"
    assert mailoutbox[0].subject == "[Alpha Inc] Run evil Bcc: victim@example.test failed"
    assert mailoutbox[0].bcc == []
