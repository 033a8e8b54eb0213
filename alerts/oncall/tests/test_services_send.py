"""Pages leave through the outbox to local receivers that answer like PagerDuty, Slack and
Teams: the documented bodies for trigger and resolve under one dedup key, retries on 429 and 5xx
with backoff until sent, no retry on 4xx, a suspended tenant's pages failed unsent, each tenant's
pages only over its own routes, the platform's over the operator's, e-mail to the admins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context
from prometheus_client import REGISTRY

from alerts.oncall.models import Page, Route
from alerts.oncall.services.pages import pages_create
from alerts.oncall.services.send import page_send
from alerts.oncall.tasks import pages_flush_tenant
from alerts.oncall.tests.receivers import (
    PAGERDUTY_KEY,
    incident_make,
    incident_resolve,
    receiver,
)
from alerts.services.outbox import MAX_ATTEMPTS
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.services import tenant_set_status
from tests.support import OPERATOR_EMAIL

pytestmark = pytest.mark.django_db


def _route(channel: str, target: str = "", *, severities=("critical", "warning")) -> Route:
    return Route.objects.create(
        name=f"{channel} route",
        channel=channel,
        severities=list(severities),
        target=target,
        routing_key=PAGERDUTY_KEY if channel == "pagerduty" else "",
    )


def _page(route: Route, incident, event: str) -> Page:
    pages_create(incident, event)
    return Page.objects.get(route=route, incident=incident, event=event)


def test_pagerduty_gets_the_documented_trigger_and_resolve_with_one_dedup_key(alpha):
    with receiver("pagerduty") as pagerduty, schema_context(alpha.schema):
        route = _route("pagerduty", severities=["critical"])
        incident = incident_make(
            rule="factory_run_failure_rate_high",
            labels={},
            severity="critical",
            value=12.5,
            threshold=5,
            summary="12.5% of the last 40 finished runs failed (over 5%)",
        )
        trigger = _page(route, incident, "trigger")
        assert page_send(trigger.pk).status == "sent"
        incident_resolve(incident, after_s=720)
        resolve = _page(route, incident, "resolve")
        assert page_send(resolve.pk).status == "sent"
        assert page_send(resolve.pk).status == "skipped"  # sent once, never again
        trigger.refresh_from_db()
    assert pagerduty.answers == [202, 202]
    sent_trigger, sent_resolve = pagerduty.requests
    key = f"factory-portal/{alpha.schema}/{incident.fingerprint}/{incident.pk}"
    link = f"http://{alpha.host}/alerts/{incident.pk}/"
    assert sent_trigger["routing_key"] == PAGERDUTY_KEY
    assert sent_trigger["event_action"] == "trigger" and sent_trigger["dedup_key"] == key
    payload = sent_trigger["payload"]
    assert payload["summary"] == (
        "CRITICAL: Run failure rate high — 12.5% of the last 40 finished runs failed (over 5%)"
    )
    assert payload["source"] == "alpha" and payload["severity"] == "critical"
    assert payload["class"] == "factory_run_failure_rate_high"
    assert payload["custom_details"]["value"] == 12.5
    assert sent_trigger["links"][0]["href"] == link and sent_trigger["client_url"] == link
    assert sent_resolve == {
        "routing_key": PAGERDUTY_KEY,
        "event_action": "resolve",
        "dedup_key": key,
    }
    assert pagerduty.headers[0]["Content-Type"] == "application/json"
    assert (trigger.status, trigger.attempts, trigger.last_status_code) == ("sent", 1, 202)
    assert trigger.last_error == "" and trigger.response_ms is not None and trigger.sent_at


def test_an_acknowledge_goes_to_the_pagerduty_route_that_got_the_trigger(alpha):
    with (
        receiver("pagerduty") as pagerduty,
        receiver("slack") as slack,
        schema_context(alpha.schema),
    ):
        pd = _route("pagerduty")
        _route("slack", slack.url)
        incident = incident_make(severity="critical")
        for page in pages_create(incident, "trigger"):
            assert page_send(page.pk).status == "sent"
        incident.acknowledged_by = "kim@alpha.test"
        incident.acknowledged_at = timezone.now()
        incident.save(update_fields=["acknowledged_by", "acknowledged_at"])
        (ack,) = pages_create(incident, "acknowledge")
        assert ack.route_id == pd.pk
        assert page_send(ack.pk).status == "sent"
    assert [r["event_action"] for r in pagerduty.requests] == ["trigger", "acknowledge"]
    assert pagerduty.requests[1]["dedup_key"] == pagerduty.requests[0]["dedup_key"]
    assert len(slack.requests) == 1  # Slack heard the trigger only


def test_slack_gets_a_readable_message_and_a_resolve_that_says_how_long(alpha):
    with receiver("slack") as slack, schema_context(alpha.schema):
        route = _route("slack", slack.url, severities=["warning"])
        incident = incident_make(labels={"queue_name": "q<1>"})
        assert page_send(_page(route, incident, "trigger").pk).status == "sent"
        incident_resolve(incident, after_s=12 * 60)
        assert page_send(_page(route, incident, "resolve").pk).status == "sent"
    trigger, resolve = slack.requests
    assert slack.answers == [200, 200]
    assert trigger["text"].startswith("WARNING: Queue depth high — Queue q1: 1,240 jobs waiting")
    fields = [f["text"] for f in trigger["blocks"][1]["fields"]]
    assert "*Value*\n1,240 jobs (threshold 1,000 jobs)" in fields
    assert "*Labels*\n`queue_name=q&lt;1&gt;`" in fields
    assert any(f.startswith("*Since*\n") and f.endswith(", for 10 min") for f in fields)
    assert trigger["blocks"][2]["text"]["text"] == (
        f"<http://{alpha.host}/alerts/{incident.pk}/|Open the incident>"
    )
    assert resolve["blocks"][0]["text"]["text"] == "Resolved after 12 min: Queue depth high"


def test_teams_gets_the_adaptive_card_envelope(alpha):
    with receiver("teams") as teams, schema_context(alpha.schema):
        route = _route("teams", teams.url)
        incident = incident_make()
        assert page_send(_page(route, incident, "trigger").pk).status == "sent"
    (body,) = teams.requests
    assert teams.answers == [202]
    card = body["attachments"][0]["content"]
    assert card["body"][0]["text"] == "WARNING: Queue depth high"
    assert card["actions"][0]["url"] == f"http://{alpha.host}/alerts/{incident.pk}/"


def _sample(channel: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "notification_deliveries_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


def test_429_and_500_are_retried_with_backoff_then_sent(alpha, django_capture_on_commit_callbacks):
    before = (_sample("pagerduty", "retry"), _sample("pagerduty", "sent"))
    with receiver("pagerduty", [429, 500]) as pagerduty, schema_context(alpha.schema):
        route = _route("pagerduty")
        page = _page(route, incident_make(), "trigger")
        outcomes = []
        for _ in range(3):
            started = timezone.now()
            with django_capture_on_commit_callbacks(execute=True):
                outcome = page_send(page.pk)
            outcomes.append((outcome.status, outcome.retry_in_s))
            page.refresh_from_db()
            if outcome.status == "pending":
                assert page.last_error.startswith("HTTP ")
                waited = (page.next_attempt_at - started).total_seconds()
                assert outcome.retry_in_s - 1 <= waited <= outcome.retry_in_s + 1
    assert outcomes == [("pending", 30), ("pending", 60), ("sent", None)]
    assert pagerduty.answers == [429, 500, 202]
    assert len({r["dedup_key"] for r in pagerduty.requests}) == 1  # the same event each time
    assert (page.status, page.attempts, page.last_status_code, page.last_error) == (
        "sent",
        3,
        202,
        "",
    )
    after = (_sample("pagerduty", "retry"), _sample("pagerduty", "sent"))
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)


def test_retries_stop_at_the_outbox_maximum(alpha):
    with receiver("slack", [503] * MAX_ATTEMPTS) as slack, schema_context(alpha.schema):
        page = _page(_route("slack", slack.url), incident_make(), "trigger")
        statuses = [page_send(page.pk).status for _ in range(MAX_ATTEMPTS + 1)]
        page.refresh_from_db()
    assert statuses == ["pending"] * (MAX_ATTEMPTS - 1) + ["failed", "skipped"]
    assert (page.status, page.attempts, page.last_error) == ("failed", MAX_ATTEMPTS, "HTTP 503")


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_slack_refusals_fail_at_once(alpha, status):
    with receiver("slack", [status]) as slack, schema_context(alpha.schema):
        page = _page(_route("slack", slack.url), incident_make(), "trigger")
        assert page_send(page.pk).status == "failed"
        assert page_send(page.pk).status == "skipped"
        page.refresh_from_db()
    assert len(slack.requests) == 1
    assert (page.status, page.attempts, page.last_status_code) == ("failed", 1, status)
    assert page.last_error == f"HTTP {status}"  # a fixed reason, never the receiver's text


def test_pagerduty_400_is_not_retried(alpha):
    with receiver("pagerduty") as pagerduty, schema_context(alpha.schema):
        route = _route("pagerduty")
        Route.objects.filter(pk=route.pk).update(routing_key="short")  # PagerDuty refuses it
        page = _page(route, incident_make(), "trigger")
        assert page_send(page.pk).status == "failed"
        page.refresh_from_db()
    assert pagerduty.answers == [400]
    assert (page.status, page.last_error) == ("failed", "HTTP 400")


def test_a_private_address_is_refused_without_the_operators_permission(alpha):
    with receiver("slack") as slack, schema_context(alpha.schema):
        page = _page(_route("slack", slack.url), incident_make(), "trigger")
        with override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=False):
            assert page_send(page.pk).status == "failed"
        page.refresh_from_db()
    assert slack.requests == []
    assert page.last_error == "address not allowed"


def test_a_suspended_tenants_pages_fail_unsent(alpha, mailoutbox):
    with receiver("slack") as slack:
        with schema_context(alpha.schema):
            _route("slack", slack.url)
            pages_create(incident_make(), "trigger")  # Slack and the default e-mail route
        tenant_set_status(tenant=Tenant.objects.get(slug="alpha"), status="suspended")
        with schema_context(alpha.schema):
            assert pages_flush_tenant() == {"failed": 2}
            pages = list(Page.objects.all())
    assert slack.requests == [] and mailoutbox == []
    assert {(p.status, p.attempts, p.last_error) for p in pages} == {
        ("failed", 0, "Not sent: the account is suspended.")
    }


def test_a_tenants_pages_never_use_another_tenants_routes(alpha, beta):
    with receiver("slack") as alpha_slack, receiver("slack") as beta_slack:
        with schema_context(beta.schema):
            _route("slack", beta_slack.url)
        with schema_context(alpha.schema):
            route = _route("slack", alpha_slack.url)
            Route.objects.exclude(pk=route.pk).delete()  # only alpha's Slack route
            incident = incident_make()
            pages_create(incident, "trigger")
            assert pages_flush_tenant() == {"sent": 1}
            assert list(Page.objects.values_list("route_id", flat=True)) == [route.pk]
        with schema_context(beta.schema):
            assert Page.objects.count() == 0
            assert pages_flush_tenant() == {}
    assert len(alpha_slack.requests) == 1 and beta_slack.requests == []


def test_the_sweeper_sends_due_pages_and_leaves_backed_off_ones(alpha):
    with receiver("slack") as slack, schema_context(alpha.schema):
        route = _route("slack", slack.url)
        due = _page(route, incident_make(labels={"queue_name": "due"}), "trigger")
        later = _page(route, incident_make(labels={"queue_name": "later"}), "trigger")
        Page.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
        Page.objects.exclude(route=route).delete()
        assert pages_flush_tenant() == {"sent": 1}
        assert Page.objects.get(pk=due.pk).status == "sent"
        assert Page.objects.get(pk=later.pk).status == "pending"
    assert len(slack.requests) == 1


def test_the_default_email_route_writes_to_the_admins_and_a_named_route_to_its_addresses(
    alpha, mailoutbox
):
    with schema_context(alpha.schema):
        default = Route.objects.get(channel="email")  # from the migration: warning and critical
        named = _route("email", "oncall@alpha.test, Lead@Alpha.test", severities=["warning"])
        incident = incident_make()
        pages_create(incident, "trigger")
        assert page_send(Page.objects.get(route=default).pk).status == "sent"
        assert page_send(Page.objects.get(route=named).pk).status == "sent"
    to_admins, to_named = mailoutbox
    assert to_admins.to == [alpha.admin_email]
    assert to_named.to == ["oncall@alpha.test", "Lead@Alpha.test"]
    assert to_admins.subject == (
        "[Alpha Inc] WARNING: Queue depth high — Queue q1: 1,240 jobs waiting (over 1,000)"
    )
    link = f"http://{alpha.host}/alerts/{incident.pk}/"
    assert f"Open the incident: {link}" in to_admins.body
    assert "Value:     1,240 jobs (threshold 1,000 jobs)" in to_admins.body
    assert link in to_admins.alternatives[0][0]


def test_an_email_route_without_recipients_fails_with_the_reason(alpha, mailoutbox):
    from factory_portal.accounts.models import User

    with schema_context(alpha.schema):
        User.objects.filter(role="admin").update(is_active=False)
        page = _page(Route.objects.get(channel="email"), incident_make(), "trigger")
        assert page_send(page.pk).status == "failed"
        page.refresh_from_db()
    assert mailoutbox == []
    assert page.last_error.startswith("No recipients")


def test_a_page_to_a_route_disabled_since_fails_unsent(alpha):
    with receiver("slack") as slack, schema_context(alpha.schema):
        route = _route("slack", slack.url)
        page = _page(route, incident_make(), "trigger")
        Route.objects.filter(pk=route.pk).update(enabled=False)
        assert page_send(page.pk).status == "failed"
        page.refresh_from_db()
    assert slack.requests == [] and page.last_error == "The route was disabled."


def test_an_incident_a_route_paged_resolves_there_after_the_route_is_disabled(alpha):
    """Disabling a route stops new pages; an incident it paged is still resolved there, or it
    would stay open in PagerDuty for good (a review found it so)."""
    with receiver("pagerduty") as pagerduty, schema_context(alpha.schema):
        route = _route("pagerduty", severities=["critical"])
        incident = incident_make(rule="factory_run_failure_rate_high", severity="critical")
        assert page_send(_page(route, incident, "trigger").pk).status == "sent"
        Route.objects.filter(pk=route.pk).update(enabled=False)
        incident_resolve(incident, after_s=60)
        assert page_send(_page(route, incident, "resolve").pk).status == "sent"
        later = incident_make(labels={"queue_name": "q2"}, severity="critical")
        pages_create(later, "trigger")  # a disabled route takes no new incident
        assert not Page.objects.filter(incident=later, route=route).exists()
    assert [r["event_action"] for r in pagerduty.requests] == ["trigger", "resolve"]


def test_the_platforms_pages_go_over_the_operators_routes(alpha, mailoutbox):
    with receiver("pagerduty") as pagerduty:
        with schema_context(alpha.schema):
            _route("pagerduty")  # a tenant's route: never used for the platform
        with schema_context("public"):
            route = _route("pagerduty", severities=["critical"])
            incident = incident_make(severity="critical")
            pages = pages_create(incident, "trigger")
            assert {p.route.channel for p in pages} == {"pagerduty", "email"}
            for page in pages:
                assert page_send(page.pk).status == "sent"
            assert Page.objects.get(route=route).last_status_code == 202
    (body,) = pagerduty.requests
    assert body["dedup_key"] == f"factory-portal/public/{incident.fingerprint}/{incident.pk}"
    assert body["payload"]["source"] == "platform"
    assert body["links"][0]["href"] == f"http://localhost/alerts/{incident.pk}/"
    (mail,) = mailoutbox
    assert mail.to == [OPERATOR_EMAIL]
    assert mail.subject.startswith("[Factory Portal platform] CRITICAL: Queue depth high")


def test_a_resolve_waits_for_its_trigger_and_is_dropped_when_the_trigger_failed(alpha):
    """A route hears an incident in order: a resolve due while the trigger is in backoff waits
    (retried, nothing sent); once the trigger is sent the resolve follows; a resolve after a
    trigger that failed for good is failed unsent."""
    with receiver("pagerduty", statuses=[500]) as pagerduty, schema_context(alpha.schema):
        route = _route("pagerduty", severities=["warning"])
        incident = incident_make()
        trigger = _page(route, incident, "trigger")
        assert page_send(trigger.pk).status == "pending"  # HTTP 500: in backoff
        incident_resolve(incident, after_s=120)
        resolve = _page(route, incident, "resolve")
        assert page_send(resolve.pk).status == "pending"
        resolve.refresh_from_db()
        assert resolve.last_error == "Waiting for the trigger to this route to go out first."
        assert [r["event_action"] for r in pagerduty.requests] == ["trigger"]
        Page.objects.filter(pk__in=[trigger.pk, resolve.pk]).update(next_attempt_at=timezone.now())
        assert page_send(trigger.pk).status == "sent"
        assert page_send(resolve.pk).status == "sent"
        assert [r["event_action"] for r in pagerduty.requests] == ["trigger", "trigger", "resolve"]

        other = incident_make(labels={"queue_name": "q2"})
        failed_trigger = _page(route, other, "trigger")
        Page.objects.filter(pk=failed_trigger.pk).update(status=Page.Status.FAILED)
        incident_resolve(other, after_s=120)
        dropped = _page(route, other, "resolve")
        assert page_send(dropped.pk).status == "failed"
        dropped.refresh_from_db()
        assert dropped.last_error == "Not sent: the trigger to this route was never delivered."
    assert len(pagerduty.requests) == 3  # nothing about the incident nobody was told of


def test_a_run_budget_page_reads_its_rule_by_name(alpha):
    """Not by its key ("CRITICAL: run.over_budget — …", a review found)."""
    from alerts.oncall.services.send import notice_for

    with schema_context(alpha.schema):
        incident = incident_make(
            rule="run.over_budget", labels={"run_id": "r1"}, severity="critical"
        )
        notice = notice_for(incident, "trigger")
    assert notice.title == "Run over its run budget"
