"""The alert routes pages of tenant admins (/settings/alert-routes/) and of the operator
(/alerts/routes/): adding routes with their targets checked per channel, secrets masked after
creation, "Send test" through the same code as a page with the answer shown, enable, disable,
delete, the delivery log; roles and tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

from alerts.oncall.models import Incident, Page, Route
from alerts.oncall.tests.receivers import PAGERDUTY_KEY, incident_make, receiver
from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from factory_portal.tenants.models import Tenant
from tests.support import host_client, logged_in_client, response_text

pytestmark = pytest.mark.django_db

SLACK_URL = "https://127.0.0.1:9/services/T0000/B0000/slacksecret7Zq4"


def _form(**fields: object) -> dict[str, object]:
    return {"name": "On-call", "channel": "pagerduty", "severities": ["critical"], **fields}


def _messages(response) -> str:  # type: ignore[no-untyped-def]
    return " ".join(str(m) for m in response.context["messages"])


def test_admin_adds_a_pagerduty_route_and_sees_its_key_masked_afterwards(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    listing = client.get("/settings/alert-routes/")
    assert listing.status_code == 200 and "E-mail the admins" in response_text(listing)
    created = client.post("/settings/alert-routes/", _form(routing_key=PAGERDUTY_KEY))
    assert created.status_code == 302
    with schema_context(alpha.schema):
        route = Route.objects.get(channel="pagerduty")
    assert created["Location"] == f"/settings/alert-routes/{route.pk}/"
    assert (route.severities, route.routing_key, route.target) == (["critical"], PAGERDUTY_KEY, "")
    for page in (client.get(created["Location"]), client.get("/settings/alert-routes/")):
        text = response_text(page)
        assert PAGERDUTY_KEY not in text and f"••••{PAGERDUTY_KEY[-4:]}" in text


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_a_slack_url_is_shown_by_its_host_and_last_characters_only(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    form = _form(channel="slack", severities=["warning", "critical"], target=SLACK_URL)
    created = client.post("/settings/alert-routes/", form)
    assert created.status_code == 302
    with schema_context(alpha.schema):
        route = Route.objects.get(channel="slack")
    assert route.severities == ["critical", "warning"] and route.target == SLACK_URL
    for page in (client.get(created["Location"]), client.get("/settings/alert-routes/")):
        text = response_text(page)
        assert "slacksecret" not in text and "127.0.0.1 ••••7Zq4" in text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"routing_key": "too-short"}, "A PagerDuty integration key is 32 letters and digits"),
        ({"routing_key": "x" * 31 + "!"}, "A PagerDuty integration key is 32 letters and digits"),
        ({"channel": "slack", "target": ""}, "Paste the channel&#x27;s incoming-webhook URL."),
        (
            {"channel": "teams", "target": "http://hooks.example.com/x"},
            "The incoming-webhook URL must start with https://.",
        ),
        (
            {"channel": "slack", "target": "https://127.0.0.1/hook"},
            "resolves to a non-public address",
        ),
        ({"channel": "email", "target": "ops@alpha.test, nope"}, "is not an e-mail address."),
        ({"severities": []}, "Choose at least one severity."),
        ({"channel": "sms"}, "Select a valid choice."),
    ],
)
def test_bad_routes_are_refused_with_a_precise_message(alpha, fields, message):
    client = logged_in_client(alpha.host, alpha.admin_email)
    response = client.post(
        "/settings/alert-routes/", _form(**{"routing_key": PAGERDUTY_KEY, **fields})
    )
    assert response.status_code == 400
    assert message in response_text(response)
    with schema_context(alpha.schema):
        assert list(Route.objects.values_list("channel", flat=True)) == ["email"]


def test_send_test_reports_the_receivers_answer(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    with receiver("slack", [200, 404]) as slack:
        with schema_context(alpha.schema):
            route = Route.objects.create(
                name="ops", channel="slack", severities=["warning"], target=slack.url
            )
        ok = client.post(f"/settings/alert-routes/{route.pk}/test", follow=True)
        assert "Test sent to ops: HTTP 200 in " in _messages(ok)
        refused = client.post(f"/settings/alert-routes/{route.pk}/test", follow=True)
        assert "The test to ops failed: HTTP 404 in " in _messages(refused)
    first = slack.requests[0]
    assert first["text"].startswith("INFO: Test of the route ops")
    assert f"<http://{alpha.host}/alerts/|Open the incident>" in first["text"]
    with schema_context(alpha.schema):
        assert Page.objects.count() == 0  # a test is not an incident page


def test_send_test_of_the_email_route_writes_to_the_admins(alpha, mailoutbox):
    client = logged_in_client(alpha.host, alpha.admin_email)
    with schema_context(alpha.schema):
        route = Route.objects.get(channel="email")
    response = client.post(f"/settings/alert-routes/{route.pk}/test", follow=True)
    assert f"Test e-mailed to {alpha.admin_email} in " in _messages(response)
    assert mailoutbox[0].to == [alpha.admin_email]
    assert mailoutbox[0].subject.startswith("[Alpha Inc] INFO: Test of the route E-mail the admins")


def test_disable_enable_and_delete(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    with schema_context(alpha.schema):
        route = Route.objects.get(channel="email")
    assert client.post(f"/settings/alert-routes/{route.pk}/toggle").status_code == 302
    with schema_context(alpha.schema):
        assert not Route.objects.get(pk=route.pk).enabled
    refused = client.post(f"/settings/alert-routes/{route.pk}/test", follow=True)
    assert "Enable the route before sending a test." in _messages(refused)
    client.post(f"/settings/alert-routes/{route.pk}/toggle")
    with schema_context(alpha.schema):
        assert Route.objects.get(pk=route.pk).enabled
    assert client.get(f"/settings/alert-routes/{route.pk}/delete").status_code == 405
    deleted = client.post(f"/settings/alert-routes/{route.pk}/delete")
    assert deleted.status_code == 302 and deleted["Location"] == "/settings/alert-routes/"
    with schema_context(alpha.schema):
        assert not Route.objects.exists()


def test_the_delivery_log_is_paginated_by_50(alpha, django_assert_max_num_queries):
    now = timezone.now()
    with schema_context(alpha.schema):
        route = Route.objects.get(channel="email")
        incidents = Incident.objects.bulk_create(
            Incident(
                rule="factory_queue_depth_high",
                labels={"queue_name": f"q{n}"},
                fingerprint=f"fp{n}",
                severity="warning",
                state="resolved",
                summary=f"Queue q{n:02d} was deep",
                threshold=1000,
                resolved_at=now,
            )
            for n in range(51)
        )
        Page.objects.bulk_create(
            Page(incident=i, route=route, event="trigger", status="failed", last_error="HTTP 500")
            for i in incidents
        )
    client = logged_in_client(alpha.host, alpha.admin_email)
    with django_assert_max_num_queries(14):
        first = response_text(client.get(f"/settings/alert-routes/{route.pk}/"))
    second = response_text(client.get(f"/settings/alert-routes/{route.pk}/?page=2"))
    assert first.count("was deep") == 50 and second.count("was deep") == 1
    assert "HTTP 500" in first and "?page=2" in first


def test_log_times_are_in_the_tenants_time_zone(alpha):
    Tenant.objects.filter(pk=alpha.tenant.pk).update(timezone="Asia/Tokyo")
    created = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)  # 07:30 the next day in Tokyo
    with schema_context(alpha.schema):
        route = Route.objects.get(channel="email")
        incident = incident_make()
        Page.objects.create(incident=incident, route=route, event="trigger", created_at=created)
    page = response_text(
        logged_in_client(alpha.host, alpha.admin_email).get(f"/settings/alert-routes/{route.pk}/")
    )
    assert "Created (Asia/Tokyo)" in page and "2026-11-21 07:30:00" in page


def test_members_and_finance_get_403_and_visitors_log_in(alpha, people):
    with schema_context(alpha.schema):
        pk = Route.objects.get().pk
    gets = ("/settings/alert-routes/", f"/settings/alert-routes/{pk}/")
    posts = (f"/settings/alert-routes/{pk}/{action}" for action in ("test", "toggle", "delete"))
    for role in ("member", "finance"):
        for path in gets:
            assert people[role].get(path).status_code == 403, (role, path)
        assert people[role].post("/settings/alert-routes/", _form()).status_code == 403
    for path in posts:
        for role in ("member", "finance"):
            assert people[role].post(path).status_code == 403, (role, path)
    assert host_client(alpha.host).get(gets[0])["Location"].startswith("/login/")
    with schema_context(alpha.schema):
        assert Route.objects.filter(pk=pk, enabled=True).exists()


def test_another_tenants_routes_are_404_and_never_listed(alpha, beta):
    with schema_context(beta.schema):
        theirs = Route.objects.create(
            pk=9999, name="beta pager", channel="pagerduty", severities=["critical"]
        )
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert "beta pager" not in response_text(client.get("/settings/alert-routes/"))
    assert client.get(f"/settings/alert-routes/{theirs.pk}/").status_code == 404
    for action in ("test", "toggle", "delete"):
        assert client.post(f"/settings/alert-routes/{theirs.pk}/{action}").status_code == 404
    with schema_context(beta.schema):
        assert Route.objects.filter(pk=theirs.pk, enabled=True).exists()


def test_the_alert_settings_page_links_to_the_routes(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert 'href="/settings/alert-routes/"' in response_text(client.get("/settings/alerts/"))


def test_the_operator_manages_the_platforms_routes_and_sends_a_test(operator, alpha):
    with schema_context(alpha.schema):
        Route.objects.create(name="alpha pager", channel="pagerduty", severities=["critical"])
    listing = response_text(operator.get("/alerts/routes/"))
    assert "E-mail the operators" in listing and "alpha pager" not in listing
    assert "blank: the operators" in listing
    with receiver("pagerduty") as pagerduty:
        created = operator.post("/alerts/routes/", _form(routing_key=PAGERDUTY_KEY))
        assert created.status_code == 302
        with schema_context("public"):
            route = Route.objects.get(channel="pagerduty")
        assert created["Location"] == f"/alerts/routes/{route.pk}/"
        tested = operator.post(f"/alerts/routes/{route.pk}/test", follow=True)
        assert "Test sent to On-call: HTTP 202 in " in _messages(tested)
    (body,) = pagerduty.requests
    assert body["payload"]["source"] == "platform" and body["payload"]["severity"] == "info"
    assert body["dedup_key"].startswith("factory-portal/public/test/")
    assert operator.post(f"/alerts/routes/{route.pk}/toggle").status_code == 302
    assert operator.post(f"/alerts/routes/{route.pk}/delete").status_code == 302
    with schema_context("public"):
        assert not Route.objects.filter(pk=route.pk).exists()


def test_operator_route_pages_are_for_operators_only(alpha, public_host):
    with schema_context("public"):
        pk = Route.objects.get().pk
    user_create(email="viewer@portal.test", role=Role.MEMBER, password="another-long-passphrase")
    viewer = logged_in_client(public_host, "viewer@portal.test", "another-long-passphrase")
    assert viewer.get("/alerts/routes/").status_code == 403
    assert viewer.get(f"/alerts/routes/{pk}/").status_code == 403
    for action in ("test", "toggle", "delete"):
        assert viewer.post(f"/alerts/routes/{pk}/{action}").status_code == 403
    tenant_admin = logged_in_client(alpha.host, alpha.admin_email)
    assert tenant_admin.get("/alerts/routes/", HTTP_HOST=public_host)["Location"].startswith(
        "/login/"
    )
    assert logged_in_client(alpha.host, alpha.admin_email).get("/alerts/routes/").status_code == 404
    with schema_context("public"):
        assert Route.objects.filter(pk=pk, enabled=True).exists()
