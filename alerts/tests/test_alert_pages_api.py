"""Alert settings pages (rules, webhooks with delivery log and test send, run alerts) and the
notifications, budgets and webhooks API: roles, scopes, validation and tenant isolation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings
from django_tenants.utils import schema_context

from alerts.models import AlertSettings, Delivery, RunSubscription, WebhookEndpoint
from alerts.tasks import deliveries_flush_tenant
from alerts.tests.test_alerts import Receiver
from billing.models import Budget
from factory_portal.accounts.services import api_key_create, api_key_revoke, user_create
from notifications.services import notification_create
from tests.support import PASSWORD, bearer, host_client, key_for, logged_in_client

pytestmark = pytest.mark.django_db


def _member(tenant, email="m@alpha.test"):
    with schema_context(tenant.schema):
        user_create(email=email, role="member", password=PASSWORD)
    return logged_in_client(tenant.host, email)


def test_admin_saves_rules_and_validation_is_explained(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert client.get("/settings/alerts/").status_code == 200
    fields = {
        "anomaly_enabled": "on",
        "anomaly_factor": "3",
        "anomaly_min_cost": "5",
        "anomaly_cooldown_hours": "4",
        "failure_rate_window": "10",
        "failure_rate_threshold": "50",
        "failure_rate_cooldown_hours": "2",
    }
    assert client.post("/settings/alerts/", fields).status_code == 302
    with schema_context(alpha.schema):
        saved = AlertSettings.objects.get()
    assert saved.anomaly_factor == Decimal("3.00") and not saved.failure_rate_enabled
    bad = client.post("/settings/alerts/", {**fields, "failure_rate_threshold": "300"})
    assert bad.status_code == 400 and "less than or equal to 100" in bad.content.decode()


def test_members_cannot_open_admin_alert_pages_but_set_their_run_alerts(alpha):
    client = _member(alpha)
    for path in ("/settings/alerts/", "/settings/webhooks/"):
        assert client.get(path).status_code == 403
    assert client.get("/settings/run-alerts/").status_code == 200
    missing = client.post("/settings/run-alerts/", {"mode": "project", "project": ""})
    assert missing.status_code == 400 and "Choose the project" in missing.content.decode()
    ok = client.post("/settings/run-alerts/", {"mode": "failures", "email": "digest"})
    assert ok.status_code == 302
    with schema_context(alpha.schema):
        sub = RunSubscription.objects.get(user__email="m@alpha.test")
    assert (sub.mode, sub.email, sub.project) == ("failures", "digest", "")


def test_loopback_webhook_urls_are_refused_on_the_form(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.post("/settings/webhooks/", {"name": "x", "url": "http://127.0.0.1:8000/h"})
    assert page.status_code == 400 and "resolves to a non-public address" in page.content.decode()


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_webhook_page_sends_a_test_and_logs_the_delivery(alpha, django_assert_max_num_queries):
    receiver = Receiver([200])
    try:
        client = logged_in_client(alpha.host, alpha.admin_email)
        created = client.post("/settings/webhooks/", {"name": "ops", "url": receiver.url})
        assert created.status_code == 302
        with schema_context(alpha.schema):
            endpoint = WebhookEndpoint.objects.get()
        detail = client.get(created["Location"]).content.decode()
        assert endpoint.secret in detail and "Nothing delivered" in detail
        assert client.post(f"/settings/webhooks/{endpoint.pk}/test").status_code == 302
        with schema_context(alpha.schema):
            assert deliveries_flush_tenant() == {"sent": 1}
        with django_assert_max_num_queries(14):
            log = client.get(f"/settings/webhooks/{endpoint.pk}/").content.decode()
        assert "Test delivery to ops" in log and ">200<" in log and "Sent" in log
        listing = client.get("/settings/webhooks/").content.decode()
        assert "ops" in listing
        assert client.post(f"/settings/webhooks/{endpoint.pk}/toggle").status_code == 302
        with schema_context(alpha.schema):
            assert not WebhookEndpoint.objects.get().enabled
        assert client.post(f"/settings/webhooks/{endpoint.pk}/delete").status_code == 302
        with schema_context(alpha.schema):
            assert not WebhookEndpoint.objects.exists() and not Delivery.objects.exists()
    finally:
        receiver.close()
    assert len(receiver.requests) == 1


def test_webhooks_of_one_tenant_are_invisible_on_another(alpha, beta):
    with schema_context(alpha.schema):
        endpoint = WebhookEndpoint.objects.create(name="a", url="https://example.com/h", secret="s")
    beta_admin = logged_in_client(beta.host, beta.admin_email)
    assert beta_admin.get(f"/settings/webhooks/{endpoint.pk}/").status_code == 404
    assert beta_admin.post(f"/settings/webhooks/{endpoint.pk}/test").status_code == 404
    _, raw = key_for(beta, ["manage"])
    assert host_client(beta.host).get("/api/v1/webhooks", **bearer(raw)).json()["results"] == []


def test_notifications_api_lists_tenant_notifications_by_key_and_the_inbox_by_session(alpha, beta):
    with schema_context(alpha.schema):
        notification_create(kind="budget", title="shared one")
        from factory_portal.accounts.models import User

        admin = User.objects.get(email=alpha.admin_email)
        notification_create(kind="run", title="personal one", user=admin)
    _, raw = key_for(alpha, ["read"])
    by_key = host_client(alpha.host).get("/api/v1/notifications", **bearer(raw)).json()
    assert [n["title"] for n in by_key["results"]] == ["shared one"]
    session = logged_in_client(alpha.host, alpha.admin_email).get("/api/v1/notifications").json()
    assert {n["title"] for n in session["results"]} == {"shared one", "personal one"}
    assert session["results"][0]["read_at"] is None
    _, beta_raw = key_for(beta, ["read"])
    assert (
        host_client(beta.host).get("/api/v1/notifications", **bearer(beta_raw)).json()["results"]
        == []
    )


def test_budgets_api_reads_with_read_and_writes_with_manage(alpha):
    client = host_client(alpha.host)
    _, reader = key_for(alpha, ["read"])
    _, manager = key_for(alpha, ["manage"])
    denied = client.post("/api/v1/budgets", {"amount": "100"}, **bearer(reader))
    assert denied.status_code == 403 and denied["Content-Type"] == "application/problem+json"
    created = client.post(
        "/api/v1/budgets",
        {"amount": "250.5", "thresholds": [80, 100]},
        content_type="application/json",
        **bearer(manager),
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["amount"] == "250.50" and body["thresholds"] == [80, 100] and body["project"] == ""
    twice = client.post(
        "/api/v1/budgets", {"amount": "1"}, content_type="application/json", **bearer(manager)
    )
    assert twice.status_code == 400 and "already has a budget" in twice.content.decode()
    bad = client.post(
        "/api/v1/budgets",
        {"amount": "-3", "project": "nope"},
        content_type="application/json",
        **bearer(manager),
    )
    assert bad.status_code == 400
    listed = client.get("/api/v1/budgets", **bearer(reader)).json()["results"]
    assert [b["amount"] for b in listed] == ["250.50"]
    budget_id = body["id"]
    changed = client.patch(
        f"/api/v1/budgets/{budget_id}",
        {"amount": "300"},
        content_type="application/json",
        **bearer(manager),
    )
    assert changed.status_code == 200 and changed.json()["amount"] == "300.00"
    assert client.delete(f"/api/v1/budgets/{budget_id}", **bearer(manager)).status_code == 204
    with schema_context(alpha.schema):
        assert not Budget.objects.exists()


def test_webhooks_api_needs_manage_and_refuses_private_urls(alpha):
    client = host_client(alpha.host)
    _, reader = key_for(alpha, ["read"])
    _, manager = key_for(alpha, ["manage"])
    assert client.get("/api/v1/webhooks", **bearer(reader)).status_code == 403
    refused = client.post(
        "/api/v1/webhooks",
        {"name": "x", "url": "http://10.0.0.5/h"},
        content_type="application/json",
        **bearer(manager),
    )
    assert refused.status_code == 400 and "non-public address" in refused.content.decode()
    created = client.post(
        "/api/v1/webhooks",
        {"name": "pub", "url": "https://93.184.215.14/hook"},
        content_type="application/json",
        **bearer(manager),
    )
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")


ENDPOINTS = ["/api/v1/notifications", "/api/v1/budgets", "/api/v1/webhooks"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_no_key_revoked_key_and_other_tenants_key_see_nothing(alpha, beta, path):
    with schema_context(alpha.schema):
        Budget.objects.create(amount=Decimal("5"), thresholds=[100])
        notification_create(kind="budget", title="alpha only")
        WebhookEndpoint.objects.create(name="a", url="https://example.com/h", secret="s")
        revoked, revoked_raw = api_key_create(name="old", scopes=["read", "manage"])
        api_key_revoke(api_key=revoked)
    _, beta_raw = key_for(beta, ["read", "manage"])
    client = host_client(alpha.host)
    assert client.get(path).status_code in (401, 403)
    assert client.get(path, **bearer(revoked_raw)).status_code == 401
    assert client.get(path, **bearer(beta_raw)).status_code == 401  # beta's key on alpha's host
    theirs = host_client(beta.host).get(path, **bearer(beta_raw))
    assert theirs.status_code == 200 and theirs.json()["results"] == []
