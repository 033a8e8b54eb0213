"""Evaluating the rules of a schema: incidents move pending → firing → resolved (or are
dropped), each trigger and resolve goes to the routes' outbox exactly once and, in a tenant, to
its inbox; silences mute without stopping the lifecycle; a disabled rule resolves its incidents;
the platform's rules page the operator's routes; no schema sees another's rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from alerts.models import Alert, Delivery, WebhookEndpoint
from alerts.oncall.domain.rules import fingerprint
from alerts.oncall.models import Incident, Page, Route, RuleSetting
from alerts.oncall.services.evaluate import rules_evaluate
from alerts.oncall.services.silences import silence_create, silence_expire
from notifications.models import Notification
from runtime.models import MetricSeries
from runtime.tests.rows import heartbeat_make, points_write, series_make

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)
QUEUE_RULE = "factory_queue_depth_high"


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def _clear_after_60s(settings):
    settings.ONCALL_CLEAR_FOR_S = 60


def queue_rule(**fields: object) -> RuleSetting:
    """The queue rule over 60 s, firing after 60 s above 1,000 jobs (the current schema)."""
    values: dict[str, object] = {
        "threshold": Decimal(1000),
        "window_s": 60,
        "for_s": 60,
        "severity": "warning",
    }
    values.update(fields)
    return RuleSetting.objects.create(rule=QUEUE_RULE, **values)


def slack_route() -> Route:
    return Route.objects.create(
        name="Slack #ops",
        channel=Route.Channel.SLACK,
        severities=["warning", "critical"],
        target="https://hooks.slack.com/services/T000/B000/XXXX",
    )


class Queue:
    """One queue's depth series in the current schema."""

    def __init__(self, name: str = "build") -> None:
        self.series: MetricSeries = series_make("queue_depth", queue_name=name)
        self.name = name

    def depth(self, value: float, at: datetime) -> None:
        points_write(self.series, [(at, value)], rollups=False)  # raw points are read


def pages(event: str) -> list[tuple[str, str]]:
    return sorted(
        Page.objects.filter(event=event).values_list("route__channel", "status")  # type: ignore[arg-type]
    )


def incident() -> Incident:
    return Incident.objects.get(rule=QUEUE_RULE)


def test_an_incident_goes_pending_firing_resolved_with_each_page_once(alpha):
    with schema_context(alpha.schema):
        queue_rule()
        slack_route()
        queue = Queue()
        queue.depth(1500, t(-5))
        summary = rules_evaluate(now=t(0))
        assert summary.actions == {"open": 1} and summary.scope == "tenant"
        assert incident().state == "pending" and not Page.objects.exists()

        queue.depth(1700, t(25))
        rules_evaluate(now=t(30))
        assert incident().state == "pending" and incident().peak == 1600.0  # (1500 + 1700) / 2

        queue.depth(1300, t(55))
        summary = rules_evaluate(now=t(60))
        fired = incident()
        assert summary.actions == {"fire": 1} and summary.triggers == 1
        assert (fired.state, fired.fired_at, fired.notified_at) == ("firing", t(60), t(60))
        assert fired.fingerprint == fingerprint(QUEUE_RULE, {"queue_name": "build"})
        assert fired.labels == {"queue_name": "build"} and fired.severity == "warning"
        assert (fired.value, fired.peak, fired.threshold) == (1500.0, 1600.0, 1000.0)
        assert fired.summary == (
            "Queue build: 1,500 jobs waiting on average over the last 1 min (threshold 1,000 jobs)"
        )
        # The default e-mail route and the Slack route both take warnings: one page each.
        assert pages("trigger") == [("email", "pending"), ("slack", "pending")]
        alert = Alert.objects.get(key=f"incident:{fired.pk}:firing")
        assert (alert.kind, alert.severity) == ("runtime", "warning")
        assert alert.url == f"/alerts/{fired.pk}/"
        assert alert.title == "Queue depth high: build"
        assert "Queue build: 1,500 jobs waiting" in alert.body and "Scale up workers" in alert.body
        assert "Firing since 2026-11-30 09:01 UTC, after 60 s pending." in alert.body
        note = Notification.objects.get(kind="runtime")
        assert (note.action_url, note.action_label) == (f"/alerts/{fired.pk}/ack/", "Acknowledge")
        assert not Delivery.objects.filter(channel="email").exists()  # e-mail goes by the routes

        queue.depth(1400, t(85))
        assert rules_evaluate(now=t(90)).triggers == 0  # still firing: nothing sent again
        assert len(pages("trigger")) == 2

        # The queue drains: no point in the last minute at 150 s; clear for 60 s at 210 s.
        assert rules_evaluate(now=t(150)).actions == {"clearing": 1}
        assert incident().clear_since == t(150) and incident().value is None
        rules_evaluate(now=t(180))
        assert incident().state == "firing"
        summary = rules_evaluate(now=t(210))
        resolved = incident()
        assert summary.actions == {"resolve": 1} and summary.resolves == 1
        assert (resolved.state, resolved.resolved_at) == ("resolved", t(210))
        assert pages("resolve") == [("email", "pending"), ("slack", "pending")]
        done = Alert.objects.get(key=f"incident:{resolved.pk}:resolved")
        assert done.severity == "info" and done.title == "Resolved: Queue depth high: build"
        assert "after 2 min firing" in done.body and "Peak 1,600 jobs" in done.body
        assert Notification.objects.filter(kind="runtime").count() == 2

        assert rules_evaluate(now=t(240)).actions == {}
        assert Page.objects.count() == 4 and Incident.objects.count() == 1


def test_a_queue_above_again_after_a_resolve_is_a_new_incident(alpha):
    with schema_context(alpha.schema):
        queue_rule(for_s=0)
        queue = Queue()
        queue.depth(2000, t(-5))
        assert rules_evaluate(now=t(0)).actions == {"fire": 1}
        rules_evaluate(now=t(70))
        rules_evaluate(now=t(130))
        queue.depth(2000, t(135))
        assert rules_evaluate(now=t(140)).actions == {"fire": 1}
        states = sorted(Incident.objects.values_list("state", flat=True))
        assert states == ["firing", "resolved"]
        assert Page.objects.filter(event="trigger").count() == 2  # one per incident (e-mail)


def test_a_pending_incident_that_clears_is_dropped_unnotified(alpha):
    with schema_context(alpha.schema):
        queue_rule()
        queue = Queue()
        queue.depth(1500, t(-5))
        rules_evaluate(now=t(0))
        queue.depth(10, t(25))  # average (1500 + 10) / 2 < 1000
        assert rules_evaluate(now=t(30)).actions == {"drop": 1}
        assert not Incident.objects.exists() and not Page.objects.exists()
        assert not Alert.objects.exists()


def test_flapping_within_the_clear_delay_sends_one_trigger_and_no_resolve(alpha):
    with schema_context(alpha.schema):
        queue_rule(for_s=0, window_s=10)
        queue = Queue()
        for n in range(12):  # above on even 20 s steps, silent on odd: never clear for 60 s
            if n % 2 == 0:
                queue.depth(5000, t(20 * n - 1))
            rules_evaluate(now=t(20 * n))
        assert incident().state == "firing"
        assert Page.objects.filter(event="trigger").count() == 1
        assert not Page.objects.filter(event="resolve").exists()


def test_a_silenced_incident_fires_quietly_and_notifies_when_the_silence_ends(alpha):
    with schema_context(alpha.schema):
        queue_rule(for_s=0)
        silence = silence_create(
            rule=QUEUE_RULE,
            matchers={"queue_name": "build"},
            ends_at=t(100),
            reason="Migrating the build queue",
            created_by="admin@alpha.test",
            now=t(-10),
        )
        other = Queue("docs")  # not matched by the silence
        queue = Queue()
        queue.depth(2000, t(-5))
        other.depth(2000, t(-5))
        summary = rules_evaluate(now=t(0))
        assert summary.actions == {"fire": 2} and summary.triggers == 1
        muted = Incident.objects.get(labels__queue_name="build")
        assert muted.state == "firing" and muted.notified_at is None
        assert muted.silence == silence
        assert not Page.objects.filter(incident=muted).exists()
        assert not Alert.objects.filter(key=f"incident:{muted.pk}:firing").exists()

        queue.depth(2000, t(55))
        rules_evaluate(now=t(60))  # silenced still
        assert not Page.objects.filter(incident=muted).exists()
        queue.depth(2000, t(115))
        assert rules_evaluate(now=t(120)).triggers == 1  # the silence ended at 100 s
        muted.refresh_from_db()
        assert muted.notified_at == t(120) and muted.silence == silence
        assert Page.objects.filter(incident=muted, event="trigger").count() == 1
        assert Alert.objects.filter(key=f"incident:{muted.pk}:firing").exists()


def test_an_incident_silenced_until_it_resolves_sends_nothing(alpha):
    with schema_context(alpha.schema):
        queue_rule(for_s=0)
        silence = silence_create(
            rule="",
            matchers={},
            ends_at=t(3600),
            reason="Maintenance window",
            created_by="admin@alpha.test",
            now=t(-10),
        )
        Queue().depth(2000, t(-5))
        rules_evaluate(now=t(0))
        rules_evaluate(now=t(70))
        assert rules_evaluate(now=t(130)).actions == {"resolve": 1}
        assert incident().state == "resolved" and incident().silence == silence
        assert not Page.objects.exists() and not Alert.objects.exists()
        silence_expire(silence, now=t(140))


def test_disabling_a_rule_resolves_its_open_incidents(alpha):
    with schema_context(alpha.schema):
        setting = queue_rule(for_s=0)
        queue = Queue()
        queue.depth(2000, t(-5))
        rules_evaluate(now=t(0))
        setting.enabled = False
        setting.save()
        queue.depth(2000, t(25))
        summary = rules_evaluate(now=t(30))
        assert summary.actions == {"resolve": 1} and summary.resolves == 1
        assert incident().state == "resolved"
        assert Page.objects.filter(event="resolve").count() == 1
        assert rules_evaluate(now=t(60)).actions == {}  # disabled: no new incident


def test_the_platform_rules_page_the_operators_routes_and_no_inbox(alpha):
    with schema_context("public"):
        queue_rule(for_s=0)
        Queue("platform-build").depth(3000, t(-5))
        summary = rules_evaluate(now=t(0))
        assert summary.scope == "platform" and summary.triggers == 1
        platform = incident()
        assert platform.labels == {"queue_name": "platform-build"}
        route = Route.objects.get()
        assert route.name == "E-mail the operators"
        assert list(Page.objects.values_list("route", "event")) == [(route.pk, "trigger")]
    with schema_context(alpha.schema):
        assert rules_evaluate(now=t(0)).actions == {}
        assert not Incident.objects.exists() and not Alert.objects.exists()


def test_each_tenant_evaluates_only_its_own_rows_and_settings(alpha, beta):
    with schema_context(beta.schema):
        queue_rule(for_s=0, threshold=Decimal(10))
        Queue("beta-secret").depth(50, t(-5))
        heartbeat_make("beta-control-plane", t(-600))
        assert rules_evaluate(now=t(0)).triggers == 2
        assert set(Incident.objects.values_list("rule", flat=True)) == {
            QUEUE_RULE,
            "factory_control_plane_down",
        }
    with schema_context(alpha.schema):
        Queue("alpha-build").depth(50, t(-5))  # under alpha's (default) 1,000 jobs
        assert rules_evaluate(now=t(0)).actions == {}
        assert not Incident.objects.exists() and not Page.objects.exists()
    with schema_context(beta.schema):
        assert Page.objects.filter(event="trigger").count() == 2


def test_a_webhook_endpoint_hears_of_runtime_alerts(alpha):
    with schema_context(alpha.schema):
        endpoint = WebhookEndpoint.objects.create(
            name="ops", url="https://hooks.example.com/x", secret="s"
        )
        queue_rule(for_s=0)
        Queue().depth(2000, t(-5))
        rules_evaluate(now=t(0))
        delivery = Delivery.objects.get(endpoint=endpoint)
        assert delivery.alert.data["rule"] == QUEUE_RULE
        assert delivery.alert.data["labels"] == {"queue_name": "build"}
        assert delivery.alert.data["value"] == 2000.0


def test_an_incident_acknowledged_while_pending_is_acknowledged_on_pagerduty_when_it_fires(alpha):
    with schema_context(alpha.schema):
        queue_rule()
        pagerduty = Route.objects.create(
            name="PagerDuty",
            channel=Route.Channel.PAGERDUTY,
            severities=["warning"],
            routing_key="a" * 32,
        )
        slack_route()
        queue = Queue()
        queue.depth(1500, t(-5))
        rules_evaluate(now=t(0))
        Incident.objects.filter(pk=incident().pk).update(
            acknowledged_at=t(10), acknowledged_by="dev@alpha.test"
        )
        queue.depth(1500, t(55))
        rules_evaluate(now=t(60))  # fires: the trigger, and PagerDuty's acknowledge behind it
        assert incident().state == "firing"
        assert sorted(Page.objects.values_list("event", "route_id")) == sorted(
            [
                ("acknowledge", pagerduty.pk),
                ("trigger", pagerduty.pk),
                ("trigger", Route.objects.get(name="Slack #ops").pk),
                ("trigger", Route.objects.get(name__startswith="E-mail").pk),
            ]
        )
